"""Config sections of the trainers: `train_sft:` and `train_grpo:` in a pipeline YAML file.

Light on purpose (no torch import), so `dataengine config show --fields` lists them quickly.
Every checkpoint stores the resolved section as `config.yaml`; a resumed run warns when the file it
was started with differs.

One documented set of names: our field names below, and TRL's / Open-R1's names for the same
settings as aliases (`ALIASES`), so a TRL `SFTConfig`/`GRPOConfig` or an Open-R1 recipe reads as is:

    learning_rate -> lr                  per_device_train_batch_size -> batch_size (SFT) / micro_batch_size (GRPO)
    model_name_or_path -> model          gradient_accumulation_steps -> grad_accum (SFT; GRPO: see below)
    dataset_name -> dataset              save_steps -> save_every       save_total_limit -> keep_checkpoints
    logging_steps -> log_every           num_train_epochs -> epochs     max_seq_length -> max_length
    eval_steps -> eval_every             resume_from_checkpoint -> resume_from
    dataset_prompt_column -> prompt_field (GRPO)
    reward_funcs: [a, b] + reward_weights: [1.0, 0.5] -> rewards: {a: 1.0, b: 0.5}
    loss_type: TRL's names grpo, dapo, dr_grpo (our older seq_mean_token_mean, token_mean,
    constant_norm are read as those)

GRPO's `gradient_accumulation_steps` (TRL: completions per optimizer step =
per_device_train_batch_size * gradient_accumulation_steps) sets prompts_per_step to that product
divided by num_generations. Open-R1 recipe fields that change nothing here are accepted at their
no-op values (`RECIPE_NOOPS`); any other value is an error that says so.

>>> from dataengine.config import load_config_dict
>>> load_config_dict({"train_sft": {"model": "m", "dataset": "d", "learning_rate": 2e-5}}).section("train_sft").lr
2e-05
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dataengine.config import section

REPORT_TO = ("jsonl", "tensorboard", "wandb")
# `org/name` on the Hugging Face hub; anything else that is not on disk is a missing folder.
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# GRPO loss aggregations by TRL's names, implemented in trainers.grpo_loss.
LOSS_TYPES = ("grpo", "dapo", "dr_grpo")
# Our earlier names of the same losses, still read.
LEGACY_LOSS_TYPES = {"seq_mean_token_mean": "grpo", "token_mean": "dapo", "constant_norm": "dr_grpo"}

COMMON_ALIASES = {
    "model_name_or_path": "model",
    "learning_rate": "lr",
    "save_steps": "save_every",
    "save_total_limit": "keep_checkpoints",
    "logging_steps": "log_every",
    "resume_from_checkpoint": "resume_from",
    "dataset_name": "dataset",
}

# Open-R1 / transformers TrainingArguments fields that do nothing here, with the values at which
# that is true (None: any value). Anything else would silently mean something we do not do.
RECIPE_NOOPS: dict[str, tuple[Any, ...] | None] = {
    "model_revision": ("main",),
    "torch_dtype": ("bfloat16", "auto", "float32"),
    "do_eval": (False,),
    "overwrite_output_dir": None,
    "log_level": None,
    "logging_first_step": None,
    "logging_strategy": ("steps",),
    "log_completions": None,
    "gradient_checkpointing_kwargs": None,
    "per_device_eval_batch_size": None,
    "push_to_hub": (False,),
    "hub_model_id": None,
    "hub_strategy": None,
    "lr_scheduler_type": ("cosine", "cosine_with_min_lr"),
}


def _normalize_common(raw: dict[str, Any]) -> dict[str, Any]:
    for name, allowed in RECIPE_NOOPS.items():
        if name in raw:
            value = raw.pop(name)
            if allowed is not None and value not in allowed:
                raise ValueError(f"{name}: {value!r} is not supported here (accepted: {', '.join(map(repr, allowed))}); "
                                 "remove the field")
    kwargs = raw.pop("lr_scheduler_kwargs", None)
    if kwargs is not None:
        if not isinstance(kwargs, dict) or set(kwargs) - {"min_lr_rate"}:
            raise ValueError(f"lr_scheduler_kwargs: only {{min_lr_rate: …}} is supported, got {kwargs!r}")
        if "min_lr_rate" in kwargs:
            raw.setdefault("min_lr_ratio", kwargs["min_lr_rate"])
    if raw.get("save_strategy") == "no":
        raw.pop("save_strategy")
        raw.setdefault("save_every", 0)
    elif raw.get("save_strategy") == "steps":
        raw.pop("save_strategy")
    return raw


# GRPO rollout engines and the importance-sampling modes of the vLLM one (trainers.grpo_loss).
ROLLOUT_ENGINES = ("transformers", "vllm")
IS_MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


@dataclass
class CommonTrainConfig:
    """Fields both trainers share: model, output, optimisation, checkpoints, logging, precision."""

    ALIASES: ClassVar[dict[str, str]] = COMMON_ALIASES

    model: str = field(default="", metadata={"path": "maybe", "help": "hub id or local folder of the model to train (from_pretrained)"})
    output_dir: str = field(default="runs/train", metadata={"path": True, "help": "checkpoints, metrics.jsonl and the final model go here"})
    seed: int = field(default=0, metadata={"help": "seed for init, shuffling and sampling; the same seed gives the same run"})
    lr: float = field(default=1e-5, metadata={"help": "peak learning rate (AdamW)"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "cosine decays to lr * min_lr_ratio"})
    warmup_steps: int = field(default=0, metadata={"help": "linear warmup optimizer steps (overrides warmup_ratio when > 0)"})
    warmup_ratio: float = field(default=0.03, metadata={"help": "warmup as a share of the total optimizer steps"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (not applied to biases and norms)"})
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    adam_beta2: float = field(default=0.95, metadata={"help": "AdamW beta2"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "clip the global grad norm to this; 0 disables"})
    max_steps: int = field(default=0, metadata={"help": "optimizer steps; 0: from epochs (SFT) — required for GRPO"})
    save_every: int = field(default=0, metadata={"help": "write a checkpoint every N optimizer steps (0: only at the end)"})
    keep_checkpoints: int = field(default=2, metadata={"help": "keep the newest N step checkpoints (0: all)"})
    resume_from: str | None = field(default="auto", metadata={"path": "maybe",
        "help": "checkpoint folder to resume from; 'auto': the newest in output_dir if any; null: start fresh"})
    log_every: int = field(default=1, metadata={"help": "log metrics every N optimizer steps"})
    report_to: list[str] = field(default_factory=lambda: ["jsonl"], metadata={
        "help": "jsonl (always written), tensorboard, wandb (used only when installed)"})
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast on GPU (ignored on CPU, which trains in fp32)"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "recompute activations to save memory"})
    attn_implementation: str | None = field(default=None, metadata={
        "help": "attention backend passed to from_pretrained (sdpa, flash_attention_2, eager); null: the default"})

    def require_inputs(self) -> None:
        """What a training run cannot start without. Checked when training starts, not at config
        load: a pipeline file that never trains (or `dataengine config show` output read back)
        carries this section with its defaults."""
        if not self.model:
            raise ValueError("model: required (a hub id or a local model folder)")

    def require_files(self) -> None:
        """Inputs that must be on disk, checked before a real run (not for --dry-run)."""
        if not Path(self.model).exists() and not HUB_ID.fullmatch(self.model):
            raise ValueError(f"model: {self.model}: no such model folder (and not a hub id like org/name)")
        if not Path(self.dataset).exists():  # type: ignore[attr-defined]
            raise ValueError(f"dataset: {self.dataset}: no such dataset folder or file")  # type: ignore[attr-defined]

    def validate_common(self) -> None:
        for name in ("lr", "min_lr_ratio", "warmup_ratio", "weight_decay", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0")
        bad = [r for r in self.report_to if r not in REPORT_TO]
        if bad:
            raise ValueError(f"report_to: unknown {bad}; known: {', '.join(REPORT_TO)}")


@section("train_sft")
@dataclass
class SFTConfig(CommonTrainConfig):
    """Supervised fine-tuning on chat `messages` (loss on assistant tokens only)."""

    ALIASES: ClassVar[dict[str, str]] = {
        **COMMON_ALIASES, "per_device_train_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum",
        "num_train_epochs": "epochs", "max_seq_length": "max_length", "eval_steps": "eval_every",
    }

    @classmethod
    def normalize_raw(cls, raw: dict[str, Any]) -> dict[str, Any]:
        return _normalize_common(raw)

    dataset: str = field(default="", metadata={"path": True,
        "help": "a datasets folder (save_to_disk, e.g. `dataengine export` output) or a .jsonl/.parquet file with a messages column"})
    split: str = field(default="train", metadata={"help": "split to train on when the dataset folder holds several"})
    eval_dataset: str | None = field(default=None, metadata={"path": True, "help": "separate eval set (same formats); else eval_fraction of dataset"})
    eval_fraction: float = field(default=0.0, metadata={"help": "hold out this share of the dataset for eval loss (seeded)"})
    eval_every: int = field(default=0, metadata={"help": "eval loss every N optimizer steps (0: only at the end, if there is an eval set)"})
    messages_field: str = field(default="messages", metadata={"help": "column holding the list of {role, content}"})
    max_length: int = field(default=4096, metadata={"help": "tokens per sequence (packed row or padded example); longer ones are truncated"})
    packing: bool = field(default=True, metadata={
        "help": "pack examples into rows of max_length with reset position ids (falls back to padding when unsupported)"})
    batch_size: int = field(default=8, metadata={"help": "rows (packed) or examples (padded) per micro-batch per device"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    epochs: float = field(default=2.0, metadata={"help": "passes over the data (R1 distillation: 2); used when max_steps is 0"})

    def require_inputs(self) -> None:
        super().require_inputs()
        if not self.dataset:
            raise ValueError("dataset: required (a datasets folder or a jsonl/parquet file)")

    def validate(self) -> None:
        self.validate_common()
        if not 0 <= self.eval_fraction < 1:
            raise ValueError("eval_fraction: must be in [0, 1)")
        if self.batch_size < 1 or self.grad_accum < 1 or self.max_length < 8:
            raise ValueError("batch_size and grad_accum must be >= 1, max_length >= 8")


@section("train_grpo")
@dataclass
class GRPOConfig(CommonTrainConfig):
    """GRPO with rule rewards: G rollouts per prompt, group-normalised advantages, clipped loss."""

    ALIASES: ClassVar[dict[str, str]] = {
        **COMMON_ALIASES, "per_device_train_batch_size": "micro_batch_size", "dataset_prompt_column": "prompt_field",
        "engine": "rollout_engine",
    }

    @classmethod
    def normalize_raw(cls, raw: dict[str, Any]) -> dict[str, Any]:
        raw = _normalize_common(raw)
        funcs, weights = raw.pop("reward_funcs", None), raw.pop("reward_weights", None)
        if funcs is not None:
            if "rewards" in raw:
                raise ValueError("give rewards or reward_funcs (+ reward_weights), not both")
            if isinstance(funcs, str):
                funcs = [funcs]
            if not isinstance(funcs, list) or not all(isinstance(f, str) for f in funcs):
                raise ValueError(f"reward_funcs: expected a list of reward names, got {funcs!r}")
            weights = [1.0] * len(funcs) if weights is None else weights
            if not isinstance(weights, list) or len(weights) != len(funcs):
                raise ValueError(f"reward_weights: expected {len(funcs)} weights (one per reward_funcs entry), got {weights!r}")
            raw["rewards"] = dict(zip(funcs, weights))
        elif weights is not None:
            raise ValueError("reward_weights: given without reward_funcs")
        accum = raw.pop("gradient_accumulation_steps", None)
        if accum is not None:
            if "prompts_per_step" in raw:
                raise ValueError("give prompts_per_step or gradient_accumulation_steps, not both")
            completions = raw.get("per_device_train_batch_size", raw.get("micro_batch_size", 8)) * accum
            g = raw.get("num_generations", 8)
            if completions % g:
                raise ValueError(f"gradient_accumulation_steps: per_device_train_batch_size * gradient_accumulation_steps "
                                 f"= {completions} completions is not a multiple of num_generations {g}")
            raw["prompts_per_step"] = completions // g
        if raw.get("loss_type") in LEGACY_LOSS_TYPES:
            raw["loss_type"] = LEGACY_LOSS_TYPES[raw["loss_type"]]
        # TRL's switch for vLLM rollouts; only its colocate mode exists here (no separate vLLM server).
        use_vllm, mode = raw.pop("use_vllm", None), raw.pop("vllm_mode", None)
        if mode is not None and mode != "colocate":
            raise ValueError(f"vllm_mode: {mode!r} is not supported here; only 'colocate' (rollout_engine: vllm)")
        if use_vllm is not None:
            engine = "vllm" if use_vllm else "transformers"
            if raw.setdefault("rollout_engine", engine) != engine:
                raise ValueError(f"use_vllm: {use_vllm!r} contradicts rollout_engine: {raw['rollout_engine']!r}")
        return raw

    dataset: str = field(default="", metadata={"path": True,
        "help": "prompts with reference answers: a datasets folder or .jsonl/.parquet file"})
    split: str = field(default="train", metadata={"help": "split to use when the dataset folder holds several"})
    prompt_field: str = field(default="prompt", metadata={"help": "column with the prompt text (or a messages list)"})
    system_prompt: str | None = field(default=None, metadata={"help": "system message put before every prompt (R1-Zero template)"})
    rewards: dict[str, float] = field(default_factory=lambda: {"format": 1.0}, metadata={
        "help": "reward name -> weight; names from trainers.rewards.REWARDS (accuracy, format, language_consistency, overlong, ...)"})
    reward_kwargs: dict[str, dict] = field(default_factory=dict, metadata={
        "help": "extra keyword arguments per reward, e.g. {overlong: {buffer: 512}}"})
    prompts_per_step: int = field(default=4, metadata={"help": "prompts per optimizer step (each gets num_generations rollouts)"})
    num_generations: int = field(default=8, metadata={"help": "G: rollouts per prompt"})
    micro_batch_size: int = field(default=8, metadata={"help": "completions per forward/backward pass"})
    max_prompt_length: int = field(default=512, metadata={"help": "prompts longer than this (tokens) are left-truncated"})
    max_completion_length: int = field(default=1024, metadata={"help": "rollout token budget; also the constant of constant_norm"})
    temperature: float = field(default=1.0, metadata={"help": "rollout sampling temperature"})
    top_p: float = field(default=1.0, metadata={"help": "rollout nucleus sampling"})
    # ---- rollouts (issue 14): TRL's vllm_* names where TRL has the same knob ----
    rollout_engine: str = field(default="transformers", metadata={
        "help": "transformers: sample from the live policy in process; vllm: a colocated vllm.LLM (TRL's "
                "vllm_mode='colocate') that gets the policy's weights after every optimizer step"})
    vllm_gpu_memory_utilization: float = field(default=0.3, metadata={
        "help": "rollout_engine vllm on GPU: share of GPU memory the colocated engine may take"})
    vllm_kv_cache_gib: float = field(default=1.0, metadata={
        "help": "rollout_engine vllm on CPU: KV cache size in GiB (the CPU backend needs one)"})
    vllm_importance_sampling_correction: bool = field(default=True, metadata={
        "help": "rollout_engine vllm: weight the policy loss by the trainer/sampler probability ratio (TIS)"})
    vllm_importance_sampling_mode: str = field(default="token_truncate", metadata={
        "help": "token_truncate (verl TIS), token_mask, sequence_truncate, sequence_mask (as TRL)"})
    vllm_importance_sampling_clip_max: float = field(default=2.0, metadata={
        "help": "TIS cap C: ratios above it are clipped to C (truncate) or zeroed (mask)"})
    loss_type: str = field(default="grpo", metadata={
        "help": "TRL's names: grpo (mean over tokens, then sequences), dapo (mean over all tokens), "
                "dr_grpo (sum / constant max_completion_length)"})
    scale_rewards: bool = field(default=True, metadata={"help": "divide advantages by the group std (false: Dr. GRPO)"})
    epsilon_low: float = field(default=0.2, metadata={"help": "clip ratio from below at 1 - epsilon_low"})
    epsilon_high: float = field(default=0.2, metadata={"help": "clip ratio from above at 1 + epsilon_high (DAPO clip-higher: 0.28)"})
    beta: float = field(default=0.0, metadata={"help": "KL coefficient (k3 estimator); 0 loads no reference model"})
    kl_ratio_correction: bool = field(default=False, metadata={"help": "weight the KL term by the importance ratio (DeepSeek-V3.2)"})
    num_iterations: int = field(default=1, metadata={"help": "optimizer passes over each batch of rollouts (μ); >1 makes the ratio non-trivial"})
    mask_truncated_completions: bool = field(default=False, metadata={"help": "completions that hit max_completion_length carry no loss (DAPO)"})
    dynamic_sampling: bool = field(default=False, metadata={"help": "drop groups whose rewards have zero spread (DAPO)"})

    def require_inputs(self) -> None:
        super().require_inputs()
        if not self.dataset:
            raise ValueError("dataset: required (prompts with reference answers)")
        if self.max_steps < 1:
            raise ValueError("max_steps: required (>= 1) for GRPO")

    def validate(self) -> None:
        self.validate_common()
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type: expected one of {', '.join(LOSS_TYPES)}, got {self.loss_type!r}")
        if self.num_generations < 2:
            raise ValueError("num_generations: must be >= 2 (advantages compare completions within a group)")
        if not self.rewards:
            raise ValueError("rewards: give at least one reward with a weight")
        if self.rollout_engine not in ROLLOUT_ENGINES:
            raise ValueError(f"rollout_engine: expected one of {', '.join(ROLLOUT_ENGINES)}, got {self.rollout_engine!r}")
        if self.vllm_importance_sampling_mode not in IS_MODES:
            raise ValueError(f"vllm_importance_sampling_mode: expected one of {', '.join(IS_MODES)}, "
                             f"got {self.vllm_importance_sampling_mode!r}")
        if self.vllm_importance_sampling_clip_max < 1.0:
            raise ValueError("vllm_importance_sampling_clip_max: must be >= 1 (a cap below 1 shrinks on-policy tokens)")
        if self.vllm_kv_cache_gib <= 0 or not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise ValueError("vllm_kv_cache_gib must be > 0 and vllm_gpu_memory_utilization in (0, 1]")
