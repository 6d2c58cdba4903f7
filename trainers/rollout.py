"""GRPO rollouts through the engine interface.

`rollout_engine: transformers` (default): the trainer wraps the model it is updating in the
`transformers` engine (`TransformersEngine.from_model`), so no weight sync is needed and the engine
returns the sampled token ids with each completion (`Completion.token_ids`): the trainer scores
exactly what was sampled. An engine that returns only text still works: `completion_ids` then
re-tokenizes it.

`rollout_engine: vllm` (`VLLMRollout`): a vllm.LLM in the trainer's process (TRL's
vllm_mode="colocate"), loaded from the same checkpoint. Before every rollout the policy's current
weights are pushed into it (`sync`, only when they changed); it conditions on the exact prompt ids
the trainer scores and returns each sampled token's id and log-prob, which the loss uses for the
truncated importance-sampling correction (trainers.grpo_loss.importance_weights).

Prompts are rendered here, not in the engine, so the trainer knows the exact prompt ids the
engine conditioned on (the engine tokenizes the same text the same way).
"""

from __future__ import annotations

import os
import time
from typing import Any

from dataengine.engines.base import Completion


def render_prompt(tokenizer: Any, messages: list[dict[str, str]], max_prompt_length: int) -> tuple[str, list[int]]:
    """The prompt text (chat template + generation prompt) and its token ids, left-truncated to
    max_prompt_length tokens: the end of a prompt (the question, the generation prompt) matters most."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) > max_prompt_length:
        text = tokenizer.decode(ids[-max_prompt_length:], skip_special_tokens=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text, ids


def completion_ids(tokenizer: Any, completion: Completion) -> list[int]:
    """The completion's token ids: as sampled when the engine returned them, else re-tokenized (+ EOS
    when it stopped naturally)."""
    if completion.token_ids is not None:
        return list(completion.token_ids)
    ids = tokenizer(completion.text, add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id] if completion.finish_reason == "stop" else ids


class VLLMRollout:
    """A colocated vLLM engine that samples GRPO rollouts from the policy's current weights."""

    def __init__(self, cfg: Any, rank: int = 0):
        # In-process engine core: the weights iterator of `sync` must reach the model runner as is
        # (a multiprocess engine would pickle it), and no spawned worker re-imports the trainer.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        from dataengine.engines.vllm_engine import VLLMEngine, on_cpu

        llm_kwargs: dict[str, Any] = {}
        dtype = "auto"  # GPU: the checkpoint's dtype (bf16), as the trainer's autocast
        if on_cpu():
            llm_kwargs["kv_cache_memory_bytes"] = int(cfg.vllm_kv_cache_gib * (1 << 30))
            dtype = "float32"  # the trainer runs fp32 on CPU; vLLM's CPU default would be bf16
        self.engine = VLLMEngine(
            cfg.model, seed=cfg.seed + rank, dtype=dtype, gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
            max_model_len=cfg.max_prompt_length + cfg.max_completion_length, return_logprobs=True,
            llm_kwargs=llm_kwargs)
        self.synced_version: int | None = None

    def sync(self, model: Any, version: int) -> float:
        """Push `model`'s weights if the engine does not hold `version` yet; returns the seconds taken."""
        if self.synced_version == version:
            return 0.0
        t0 = time.perf_counter()
        # FSDP2 shards are DTensors: each rank's engine takes the full tensors.
        self.engine.load_weights(
            (name, (t.full_tensor() if hasattr(t, "full_tensor") else t).detach())
            for name, t in model.state_dict().items())
        self.synced_version = version
        return time.perf_counter() - t0

    def generate(self, requests: list[Any]) -> list[Any]:
        return self.engine.generate(requests)

    def close(self) -> None:
        self.engine.close()
