"""Run inside the newcomer venv: load an export with TRL's SFTTrainer, loss on assistant tokens only,
on a tiny local model. argv: EXPORT_DIR WORK_DIR. Prints one JSON line of figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from datasets import load_dataset
from transformers import AutoTokenizer
from trl import SFTConfig, SFTTrainer

import dataengine
from dataengine.tinymodel import build_tiny_model

export, work = Path(sys.argv[1]), Path(sys.argv[2])
torch.manual_seed(0)
model_dir = build_tiny_model(work / "tiny-qwen", "qwen2.5")
ds = load_dataset("parquet", data_files=str(export / "data" / "train-*.parquet"))["train"]
args = SFTConfig(output_dir=str(work / "sft"), max_steps=2, per_device_train_batch_size=2, max_length=256,
                 assistant_only_loss=True, chat_template_path=str(export / "chat_template.jinja"),
                 report_to=[], use_cpu=True, logging_steps=1, save_strategy="no", dataloader_num_workers=0)
trainer = SFTTrainer(model=str(model_dir), args=args, train_dataset=ds)
row = trainer.train_dataset[0]
# TRL folds the assistant mask into `labels` (-100 where no loss), or keeps `assistant_masks`
mask = [int(x != -100) for x in row["labels"]] if "labels" in row else row["assistant_masks"]
tok = AutoTokenizer.from_pretrained(model_dir)
learned = tok.decode([i for i, m in zip(row["input_ids"], mask) if m])
assistant = next(m["content"] for m in reversed(ds[0]["messages"]) if m["role"] == "assistant")
user = next(m["content"] for m in ds[0]["messages"] if m["role"] == "user")
result = trainer.train()
print(json.dumps({"dataengine": dataengine.__file__, "rows": ds.num_rows, "columns": ds.column_names,
                  "masked": int(sum(mask)), "tokens": len(mask), "learned_head": learned[:80],
                  # the loss starts at the assistant turn (rows longer than max_length are cut before its end)
                  "learned_is_assistant": learned[:60] == assistant[:60] and user[:40] not in learned,
                  "loss": result.training_loss, "steps": result.global_step}))
