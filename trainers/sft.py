"""Supervised fine-tuning of a causal LM on chat `messages`: distil a Qwen2.5 / Llama-3 student from an
exported reasoning mix (R1 report, section 2.4: SFT alone, 2 epochs on the 800k mix).

Read top to bottom: config, setup, data, resume, then one loop with labelled sections.

    python -m trainers.sft --config examples/train/distill_qwen2.5_1.5b.yaml
    torchrun --nproc-per-node 8 -m trainers.sft --config examples/train/distill_qwen2.5_1.5b.yaml

Loss: cross-entropy on assistant tokens only (think block included), summed over the micro-batches
of an optimizer step and divided by the number of assistant tokens in the whole step (all ranks), so
gradient accumulation and data parallelism give the gradient of one big batch's token mean.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from trainers.config import SFTConfig
from trainers.data import IGNORE, check_messages, collate, load_table, plan_micro_batches, tokenize_chat
from trainers.runtime import (
    Dist,
    MetricsLogger,
    autocast,
    build_optimizer,
    clip_grad_norm,
    cosine_schedule,
    load_checkpoint,
    load_model,
    resolve_resume,
    save_checkpoint,
    seed_everything,
    shard_fsdp2,
)

PACKING_BACKENDS = ("sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3")


def supports_packing(model: torch.nn.Module) -> bool:
    """Packed rows need attention that respects position-id resets: flash-attention's varlen path,
    or transformers' mask builder, which turns resets into a block-diagonal mask (sdpa/eager/flex)."""
    try:
        from transformers.masking_utils import find_packed_sequence_indices  # noqa: F401
    except ImportError:
        return model.config._attn_implementation.startswith("flash_attention")
    return model.config._attn_implementation in PACKING_BACKENDS


def tokenize_dataset(path: str, cfg: SFTConfig, tokenizer: Any) -> list[dict[str, list[int]]]:
    """Tokenize every conversation of a dataset; a bad row is an error naming the file and row."""
    table = load_table(path, cfg.split)
    if cfg.messages_field not in table.column_names:
        raise ValueError(f"{path}: no {cfg.messages_field!r} column; columns: {', '.join(table.column_names)}")
    out = []
    for i, messages in enumerate(table[cfg.messages_field]):
        ex = tokenize_chat(tokenizer, check_messages(messages, f"{path}: row {i}"), cfg.max_length)
        if all(label == IGNORE for label in ex["labels"][1:]):
            raise ValueError(f"{path}: row {i}: no assistant token left within max_length={cfg.max_length}")
        out.append(ex)
    return out


def token_loss_sum(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of next-token cross-entropy over the positions whose label is not IGNORE."""
    labels = batch.pop("labels")
    logits = model(**batch, use_cache=False).logits  # [B, T, V]
    logits = logits[:, :-1].float()  # [B, T-1, V] position t predicts token t+1
    targets = labels[:, 1:]  # [B, T-1]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE, reduction="sum")


def num_targets(examples: list[dict[str, list[int]]], rows: list[list[int]]) -> int:
    """Assistant tokens that are prediction targets in a micro-batch (the first token of an example never is)."""
    return sum(sum(1 for t in examples[i]["labels"][1:] if t != IGNORE) for row in rows for i in row)


@torch.no_grad()
def evaluate(model: torch.nn.Module, examples: list[dict[str, list[int]]], cfg: SFTConfig, packing: bool,
             pad_id: int, dist: Dist) -> float:
    """Token-mean eval loss over the whole eval set (sharded over ranks)."""
    model.eval()
    plan = plan_micro_batches([len(e["input_ids"]) for e in examples], cfg.batch_size, cfg.max_length, packing, 0, 0)
    total, count = 0.0, 0
    for rows in plan[dist.rank :: dist.world]:
        batch = {k: v.to(dist.device) for k, v in collate(examples, rows, pad_id, packing).items()}
        with autocast(dist, cfg.bf16):
            total += token_loss_sum(model, batch).item()
        count += num_targets(examples, rows)
    model.train()
    return dist.all_sum(total) / max(1.0, dist.all_sum(count))


def train_sft(cfg: SFTConfig, *, stop_after: int | None = None) -> dict[str, Any]:
    """Train; returns the final figures. `stop_after` ends the run after that many optimizer steps of
    this process (a simulated preemption, for tests: a checkpoint is written there)."""
    # ---- setup --------------------------------------------------------------------------------
    cfg.require_inputs()
    dist = Dist()
    seed_everything(cfg.seed)
    out = Path(cfg.output_dir)
    model, tok = load_model(cfg.model, dist, cfg.attn_implementation, cfg.gradient_checkpointing)
    packing = cfg.packing and supports_packing(model)
    if cfg.packing and not packing and dist.main:
        print(f"packing off: attention backend {model.config._attn_implementation} ignores position resets",
              file=sys.stderr)

    # ---- data ---------------------------------------------------------------------------------
    train = tokenize_dataset(cfg.dataset, cfg, tok)
    evals: list[dict[str, list[int]]] = []
    if cfg.eval_dataset:
        evals = tokenize_dataset(cfg.eval_dataset, cfg, tok)
    elif cfg.eval_fraction > 0:
        # A seeded hold-out, taken before shuffling for training so it never changes between runs.
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
        n_eval = max(1, int(len(train) * cfg.eval_fraction))
        held = set(idx[:n_eval])
        evals = [train[i] for i in sorted(held)]
        train = [e for i, e in enumerate(train) if i not in held]
    lengths = [len(e["input_ids"]) for e in train]

    def plan(epoch: int) -> list[list[list[int]]]:
        return plan_micro_batches(lengths, cfg.batch_size, cfg.max_length, packing, cfg.seed, epoch)

    micro_per_step = cfg.grad_accum * dist.world
    steps_per_epoch = max(1, len(plan(0)) // micro_per_step)
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))

    # ---- model, optimizer, resume -------------------------------------------------------------
    model = shard_fsdp2(model, dist)
    model.train()
    optimizer = build_optimizer(model, cfg)
    scheduler = cosine_schedule(optimizer, cfg, total_steps)
    step, epoch, cursor = 0, 0, 0  # cursor: next micro-batch of the epoch's plan
    logger = MetricsLogger(out, cfg.report_to, dist, asdict(cfg))
    ckpt = resolve_resume(cfg)
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, optimizer, scheduler, dist)
        step, epoch, cursor = state["step"], state["epoch"], state["cursor"]
        logger.truncate_after(step)
        if dist.main:
            print(f"resumed from {ckpt} at step {step} (epoch {epoch}, micro-batch {cursor})", file=sys.stderr)
    epoch_plan = plan(epoch)

    def save(name: str | None = None) -> Path:
        return save_checkpoint(out, step, model, tok, optimizer, scheduler, cfg, dist,
                               {"epoch": epoch, "cursor": cursor}, cfg.keep_checkpoints, name)

    # ---- loop ---------------------------------------------------------------------------------
    eval_loss = float("nan")
    steps_this_run = 0
    while step < total_steps:
        t0 = time.perf_counter()
        # take this step's micro-batches (all ranks see the same plan; each trains on its share)
        step_batches = []
        while len(step_batches) < micro_per_step:
            if cursor >= len(epoch_plan):
                epoch, cursor = epoch + 1, 0
                epoch_plan = plan(epoch)
            step_batches.append(epoch_plan[cursor])
            cursor += 1
        n_targets = sum(num_targets(train, rows) for rows in step_batches)

        # micro-steps: sum of token losses / assistant tokens of the whole step
        loss_sum, n_tokens = 0.0, 0
        for rows in step_batches[dist.rank :: dist.world]:
            batch = {k: v.to(dist.device) for k, v in collate(train, rows, tok.pad_token_id, packing).items()}
            n_tokens += sum(lengths[i] for row in rows for i in row)  # real (unpadded) tokens, for tokens/s
            with autocast(dist, cfg.bf16):
                loss = token_loss_sum(model, batch) / max(1, n_targets)
            # FSDP averages gradients over ranks; the normaliser is already global, so undo the mean.
            (loss * dist.world).backward()
            loss_sum += loss.item()

        # clip, step
        grad_norm = clip_grad_norm(model, cfg.max_grad_norm)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        steps_this_run += 1

        # eval, log, checkpoint
        if evals and cfg.eval_every and step % cfg.eval_every == 0:
            eval_loss = evaluate(model, evals, cfg, packing, tok.pad_token_id, dist)
        if step % cfg.log_every == 0 or step == total_steps:
            dt = time.perf_counter() - t0
            metrics = {"loss": dist.all_sum(loss_sum), "lr": lr, "grad_norm": float(grad_norm),
                       "tokens": dist.all_sum(n_tokens), "tokens_per_s": dist.all_sum(n_tokens) / dt, "step_s": dt, "epoch": epoch + cursor / max(1, len(epoch_plan))}
            if evals and cfg.eval_every and step % cfg.eval_every == 0:
                metrics["eval_loss"] = eval_loss
            logger.log(step, metrics)
        if cfg.save_every and step % cfg.save_every == 0 and step < total_steps:
            save()
        if stop_after is not None and steps_this_run >= stop_after:
            save()
            logger.close()
            return {"step": step, "stopped": True}

    # ---- end ----------------------------------------------------------------------------------
    if evals:
        eval_loss = evaluate(model, evals, cfg, packing, tok.pad_token_id, dist)
        logger.log(step, {"eval_loss": eval_loss})
    final = save("final")
    logger.close()
    return {"step": step, "final": str(final), "eval_loss": eval_loss, "packing": packing,
            "train_examples": len(train), "eval_examples": len(evals)}


def main(argv: list[str] | None = None) -> None:
    """`python -m trainers.sft --config FILE` (what `dataengine train sft` and torchrun run)."""
    import argparse

    from dataengine.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="pipeline YAML with a `train_sft:` section")
    args = ap.parse_args(argv)
    result = train_sft(load_config(args.config).section("train_sft"))
    print(result)


if __name__ == "__main__":
    main()
