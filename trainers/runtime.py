"""What both trainers need around their loop: device and torchrun/FSDP2 setup, the optimizer and
cosine schedule, checkpoints with exact resume, and the metrics logger (console + JSONL, TensorBoard /
W&B when installed).

A checkpoint is a folder `checkpoint-<step>/` written under a temp name and renamed when complete:
the model (`save_pretrained`, loadable on its own), `config.yaml` (the resolved config section),
`state.pt` (optimizer, scheduler, step, data position, RNG states of python/numpy/torch/cuda).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

# --------------------------------------------------------------------------------------------
# Devices and torchrun
# --------------------------------------------------------------------------------------------


class Dist:
    """Rank, world size and device of this process; single-process unless started by torchrun."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        else:
            self.device = torch.device("cpu")
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, x: float) -> float:
        """Sum a number over ranks (token counts for the loss normaliser, metrics)."""
        if self.world == 1:
            return float(x)
        t = torch.tensor([float(x)], device=self.device, dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def autocast(dist: Dist, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU only; CPU trains in fp32 (CPU bf16 autocast is slow and changes results)."""
    if bf16 and dist.device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def shard_fsdp2(model: torch.nn.Module, dist: Dist) -> torch.nn.Module:
    """FSDP2 (`fully_shard`) per decoder layer, then the root, when running under torchrun."""
    if dist.world == 1:
        return model
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if dist.device.type == "cuda" else None
    kw = {"mp_policy": mp} if mp else {}
    for layer in model.model.layers:  # decoder blocks of Qwen2 / Llama
        fully_shard(layer, **kw)
    fully_shard(model, **kw)
    return model


def load_model(name: str, dist: Dist, attn_implementation: str | None = None,
               gradient_checkpointing: bool = False):  # type: ignore[no-untyped-def]
    """Model (fp32 master weights) and tokenizer; the tokenizer gets a pad token if it has none."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    kw = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32, **kw)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return model.to(dist.device), tok


# --------------------------------------------------------------------------------------------
# Optimizer and schedule
# --------------------------------------------------------------------------------------------


def build_optimizer(model: torch.nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norm weights (1-d tensors), as in nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # Fused: one kernel per step for all tensors instead of a Python loop of ~10 ops per tensor (TRL's
    # default too). Plain tensors only: FSDP2's DTensor shards keep the default implementation.
    fused = all(type(p) is torch.nn.Parameter and p.device.type in ("cpu", "cuda") and p.is_floating_point()
                for p in params)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), fused=fused or None)


def cosine_schedule(optimizer: torch.optim.Optimizer, cfg: Any, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to lr, then cosine decay to lr * min_lr_ratio at total_steps."""
    warmup = cfg.warmup_steps or int(round(cfg.warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def clip_grad_norm(model: torch.nn.Module, max_norm: float) -> float:
    """Clip the global grad norm (0: no clipping, norm still measured); returns the norm before clipping."""
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm or float("inf"))
    if hasattr(norm, "full_tensor"):  # FSDP2: a DTensor
        norm = norm.full_tensor()
    return float(norm)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _full_state_dicts(model: torch.nn.Module, optimizer: torch.optim.Optimizer, dist: Dist):  # type: ignore[no-untyped-def]
    if dist.world == 1:
        return model.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_checkpoint(out_dir: Path, step: int, model: torch.nn.Module, tokenizer: Any, optimizer: torch.optim.Optimizer,
                    scheduler: Any, cfg: Any, dist: Dist, extra: dict[str, Any], keep: int = 0,
                    name: str | None = None) -> Path:
    """Write `checkpoint-<step>` atomically (temp folder, then rename); returns its path.

    A named save (`final`) is a model folder only: weights, tokenizer, the training config; the
    optimizer and RNG state go to `checkpoint-<step>` beside it, so a larger budget can resume."""
    if name is not None and not (out_dir / f"checkpoint-{step}" / "state.pt").exists():
        save_checkpoint(out_dir, step, model, tokenizer, optimizer, scheduler, cfg, dist, extra, keep)
    model_sd, optim_sd = _full_state_dicts(model, optimizer, dist)
    final = out_dir / (name or f"checkpoint-{step}")
    if dist.main:
        tmp = out_dir / f".tmp-{final.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp, state_dict=model_sd)
        tokenizer.save_pretrained(tmp)
        (tmp / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False, allow_unicode=True))
        if name is None:
            torch.save({"step": step, "optimizer": optim_sd, "scheduler": scheduler.state_dict(),
                        "rng": rng_state(), **extra}, tmp / "state.pt")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        if keep and name is None:
            for old in sorted(find_checkpoints(out_dir))[:-keep]:
                shutil.rmtree(old[1])
    dist.barrier()
    return final


def find_checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the complete `checkpoint-<step>` folders in out_dir."""
    found = []
    for p in out_dir.glob("checkpoint-*"):
        suffix = p.name.removeprefix("checkpoint-")
        if suffix.isdigit() and (p / "state.pt").exists():
            found.append((int(suffix), p))
    return sorted(found)


def resolve_resume(cfg: Any) -> Path | None:
    """The checkpoint to resume from: `resume_from` as given, or the newest one for 'auto'."""
    if cfg.resume_from in (None, ""):
        return None
    if cfg.resume_from == "auto":
        found = find_checkpoints(Path(cfg.output_dir))
        return found[-1][1] if found else None
    path = Path(cfg.resume_from)
    if not (path / "state.pt").exists():
        raise FileNotFoundError(f"resume_from: {path} is not a checkpoint (no state.pt)")
    return path


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    dist: Dist) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNG states in place; returns the saved state dict."""
    from safetensors.torch import load_file

    weights: dict[str, torch.Tensor] = {}
    for f in sorted(path.glob("*.safetensors")):
        weights.update(load_file(f))
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    if dist.world == 1:
        # Tied embeddings are saved once; strict=False lets the tied lm_head keep pointing at them.
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if unexpected or [k for k in missing if "lm_head" not in k]:
            raise ValueError(f"{path}: checkpoint does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
        optimizer.load_state_dict(state["optimizer"])
    else:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        set_state_dict(model, optimizer, model_state_dict=weights, optim_state_dict=state["optimizer"],
                       options=StateDictOptions(full_state_dict=True, strict=False))
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return state


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


class MetricsLogger:
    """One line per logged step on the console, one JSON object per step in metrics.jsonl, and the
    same scalars to TensorBoard / W&B when asked for and installed (silently skipped otherwise,
    with one console note)."""

    def __init__(self, out_dir: Path, report_to: list[str], dist: Dist, config: dict[str, Any]) -> None:
        self.enabled = dist.main
        self.path = out_dir / "metrics.jsonl"
        self.tb = self.wandb = None
        if not self.enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        if "tensorboard" in report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tb"))
            except ImportError:
                print("tensorboard not installed; logging to metrics.jsonl only", file=sys.stderr)
        if "wandb" in report_to:
            try:
                import wandb

                self.wandb = wandb.init(project=os.environ.get("WANDB_PROJECT", "dataengine"), config=config)
            except ImportError:
                print("wandb not installed; logging to metrics.jsonl only", file=sys.stderr)

    def truncate_after(self, step: int) -> None:
        """On resume: drop rows an interrupted run logged after the checkpoint it resumes from."""
        if self.enabled and self.path.exists():
            rows = [r for r in read_metrics(self.path.parent) if r["step"] <= step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "time": round(time.time(), 3), **{k: float(v) for k, v in metrics.items()}}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        shown = " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        print(f"step {step}: {shown}", file=sys.stderr, flush=True)
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def read_metrics(out_dir: str | Path) -> list[dict[str, float]]:
    """The rows of metrics.jsonl (for tests and reports)."""
    path = Path(out_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
