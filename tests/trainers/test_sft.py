"""SFT: assistant-only label mask, packing equals padding, loss falls, every parameter trains, exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainers.config import SFTConfig
from trainers.data import IGNORE, collate, plan_micro_batches, tokenize_chat
from trainers.runtime import read_metrics
from trainers.sft import token_loss_sum, train_sft

CONV = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "<think>\nadd the numbers: 2 + 3 = 5\n</think>\n\nThe answer is 5."},
    {"role": "user", "content": "And 12 * 13?"},
    {"role": "assistant", "content": "<think>\n12 * 10 = 120, 12 * 3 = 36\n</think>\n\n156"},
]


def labelled_text(tok, ex) -> str:
    return tok.decode([t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != IGNORE])


@pytest.mark.parametrize("family", ["qwen2.5", "llama3"])
def test_only_assistant_tokens_carry_loss(family):
    from dataengine.tinymodel import build_tokenizer

    tok = build_tokenizer(family)
    ex = tokenize_chat(tok, CONV, 4096)
    eot = tok.eos_token
    # exactly the two assistant turns (think block included) and their end-of-turn tokens
    assert labelled_text(tok, ex) == CONV[2]["content"] + eot + CONV[4]["content"] + eot
    labelled = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != IGNORE]
    assert all(lab in (IGNORE, t) for t, lab in zip(ex["input_ids"], ex["labels"]))
    assert 0 < len(labelled) < len(ex["input_ids"])
    # truncation keeps the mask aligned with the tokens
    short = tokenize_chat(tok, CONV, 40)
    assert short["input_ids"] == ex["input_ids"][:40] and short["labels"] == ex["labels"][:40]


def test_packing_with_reset_positions_equals_padding(tiny_qwen, messages_dataset):
    """Packed rows (no attention mask, position ids restart per example) give the loss of padded rows."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.data import load_table

    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32).eval()
    examples = [tokenize_chat(tok, m, 256) for m in load_table(str(messages_dataset))["messages"][:4]]
    padded = collate(examples, [[0], [1], [2], [3]], tok.pad_token_id, packing=False)
    packed = collate(examples, [[0, 1], [2, 3]], tok.pad_token_id, packing=True)
    assert "attention_mask" not in packed and packed["position_ids"][0].tolist().count(0) == 2
    with torch.no_grad():
        a, b = token_loss_sum(model, padded), token_loss_sum(model, packed)
    assert torch.allclose(a, b, rtol=1e-5), (a, b)


def test_plan_is_deterministic_and_packs_within_max_length():
    lengths = [30, 50, 20, 90, 10, 60, 40]
    plan = plan_micro_batches(lengths, 2, 100, True, seed=3, epoch=1)
    assert plan == plan_micro_batches(lengths, 2, 100, True, seed=3, epoch=1)
    rows = [row for mb in plan for row in mb]
    assert sorted(i for row in rows for i in row) == list(range(7))
    assert all(sum(lengths[i] for i in row) <= 100 for row in rows)
    assert plan != plan_micro_batches(lengths, 2, 100, True, seed=3, epoch=2)  # reshuffled per epoch


def sft_config(model: Path, data: Path, out: Path, **kw) -> SFTConfig:
    base = dict(model=str(model), dataset=str(data), output_dir=str(out), max_length=192, batch_size=2,
                grad_accum=2, lr=3e-3, warmup_steps=2, max_steps=30, log_every=1, seed=1, packing=True)
    base.update(kw)
    return SFTConfig(**base)


def test_sft_loss_falls_and_every_parameter_changes(tiny_qwen, messages_dataset, tmp_path):
    from safetensors.torch import load_file

    cfg = sft_config(tiny_qwen, messages_dataset, tmp_path / "run", eval_fraction=0.125, eval_every=10)
    result = train_sft(cfg)
    rows = [r for r in read_metrics(cfg.output_dir) if "loss" in r]
    assert [r["step"] for r in rows] == list(range(1, 31))
    first, last = rows[0]["loss"], sum(r["loss"] for r in rows[-3:]) / 3
    assert last < 0.6 * first, (first, last)
    assert result["eval_examples"] == 2 and result["train_examples"] == 14 and result["packing"]
    assert all(r["lr"] > 0 and r["tokens_per_s"] > 0 and r["grad_norm"] > 0 for r in rows)
    before = load_file(Path(tiny_qwen) / "model.safetensors")
    after = load_file(Path(result["final"]) / "model.safetensors")
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters that did not train: {unchanged}"
    # the resolved config travels with the checkpoint
    assert "lr: 0.003" in (Path(result["final"]) / "config.yaml").read_text()


@pytest.mark.parametrize("packing", [True, False])
def test_resume_continues_with_identical_losses(tiny_qwen, messages_dataset, tmp_path, packing):
    # max_steps 10 over 4 micro-batches per epoch (packed) crosses epoch boundaries, so the resumed
    # run must also restore the epoch and the position inside it.
    common = dict(max_steps=10, packing=packing, batch_size=1 if packing else 4)
    full = sft_config(tiny_qwen, messages_dataset, tmp_path / "full", **common)
    train_sft(full)
    part = sft_config(tiny_qwen, messages_dataset, tmp_path / "part", **common)
    assert train_sft(part, stop_after=4) == {"step": 4, "stopped": True}
    train_sft(part)  # resume_from: auto picks checkpoint-4
    a = {r["step"]: r["loss"] for r in read_metrics(full.output_dir) if "loss" in r}
    b = {r["step"]: r["loss"] for r in read_metrics(part.output_dir) if "loss" in r}
    assert sorted(b) == list(range(1, 11))
    for step in range(1, 11):
        assert abs(a[step] - b[step]) < 1e-6, (step, a[step], b[step])


def test_bad_dataset_rows_are_named(tiny_qwen, tmp_path):
    import datasets

    bad = tmp_path / "bad"
    datasets.Dataset.from_list([{"messages": [{"role": "user", "content": "hi"}]}]).save_to_disk(str(bad))
    with pytest.raises(ValueError, match=r"bad: row 0: no assistant turn"):
        train_sft(sft_config(tiny_qwen, bad, tmp_path / "o"))
    nocol = tmp_path / "nocol.jsonl"
    nocol.write_text('{"text": "hello"}\n')
    with pytest.raises(ValueError, match="no 'messages' column"):
        train_sft(sft_config(tiny_qwen, nocol, tmp_path / "o2"))


def test_one_step_matches_a_reference_step(tiny_qwen, messages_dataset, tmp_path):
    """Step 1 of train_sft equals a step written out by hand: transformers' own loss (mean next-token
    cross-entropy over assistant tokens) on the same batch, clipping, and torch's unfused AdamW."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.data import load_table

    cfg = sft_config(tiny_qwen, messages_dataset, tmp_path / "run", max_steps=1, grad_accum=1, packing=False,
                     batch_size=4, warmup_steps=0, warmup_ratio=0.0, lr=1e-3, weight_decay=0.1)
    result = train_sft(cfg)
    (row,) = [r for r in read_metrics(cfg.output_dir) if "loss" in r]

    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32).train()
    examples = [tokenize_chat(tok, m, cfg.max_length) for m in load_table(str(messages_dataset))["messages"]]
    rows = plan_micro_batches([len(e["input_ids"]) for e in examples], 4, cfg.max_length, False, cfg.seed, 0)[0]
    batch = collate(examples, rows, tok.pad_token_id, packing=False)
    assert row["tokens"] == sum(len(examples[i]["input_ids"]) for r in rows for i in r)  # non-pad, prompt included
    torch.manual_seed(cfg.seed)
    loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert abs(loss.item() - row["loss"]) < 1e-5, (loss.item(), row["loss"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=1e-3, betas=(cfg.adam_beta1, cfg.adam_beta2), foreach=False, fused=False)
    opt.step()
    after = load_file(Path(result["final"]) / "model.safetensors")
    ref = model.state_dict()
    moved = 0
    for k, v in after.items():
        assert torch.allclose(v, ref[k], atol=1e-6, rtol=1e-5), k
        moved += int(not torch.equal(v, load_file(Path(tiny_qwen) / "model.safetensors")[k]))
    assert moved == len(after)
