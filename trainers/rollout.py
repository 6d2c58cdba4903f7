"""GRPO rollouts through the engine interface, sampled from the live policy (always current weights).

`PolicyEngine` is an `Engine` (dataengine/engines/base.py) over an in-memory model: the trainer
hands it the model it is updating, so no weight sync is needed. It returns the sampled token ids
with each completion (`Completion.token_ids`), so the trainer scores exactly what was sampled. An
engine that returns only text (openai, vllm served elsewhere) still works: `completion_ids` then
re-tokenizes the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dataengine.engines.base import Completion, Engine, GenerationRequest, GenerationResult


class PolicyEngine(Engine):
    """Sample from `model` (a live `PreTrainedModel`, possibly FSDP-wrapped) with `tokenizer`."""

    name = "policy"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, max_prompt_length: int, batch_size: int = 64):
        self.lm, self.tokenizer = model, tokenizer
        self.model = getattr(getattr(model, "config", None), "name_or_path", "policy")
        self.max_prompt_length, self.batch_size = max_prompt_length, batch_size
        eos = getattr(model, "generation_config", None) and model.generation_config.eos_token_id
        eos = eos if eos is not None else tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])

    @torch.no_grad()
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for start in range(0, len(requests), self.batch_size):
            results += self._batch(list(requests[start : start + self.batch_size]))
        return results

    def _batch(self, reqs: list[GenerationRequest]) -> list[GenerationResult]:
        params = reqs[0].params
        if any(r.params != params for r in reqs):
            raise ValueError("PolicyEngine: one batch takes one set of sampling params")
        prompts = [prompt_ids(self.tokenizer, r, self.max_prompt_length) for r in reqs]
        device = next(self.lm.parameters()).device
        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)  # [P, Lp] left-padded
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)  # [P, Lp]
        was_training = self.lm.training
        self.lm.eval()
        try:
            out = self.lm.generate(
                input_ids=input_ids, attention_mask=attention, do_sample=True, temperature=params.temperature,
                top_p=params.top_p, top_k=0, max_new_tokens=params.max_tokens, num_return_sequences=params.n,
                pad_token_id=pad, eos_token_id=sorted(self.eos_ids),
            )  # [P * n, Lp + new]
        finally:
            self.lm.train(was_training)
        new = out[:, width:].tolist()
        results = []
        for b, req in enumerate(reqs):
            comps = [self._completion(new[b * params.n + k]) for k in range(params.n)]
            results.append(GenerationResult(req.request_id, comps, prompt_tokens=len(prompts[b]),
                                            rendered_prompt=self.tokenizer.decode(prompts[b])))
        return results

    def _completion(self, ids: list[int]) -> Completion:
        end = next((j for j, t in enumerate(ids) if t in self.eos_ids), None)
        kept = ids[: end + 1] if end is not None else ids  # keep the EOS: the model must learn to stop
        text = self.tokenizer.decode(kept[:-1] if end is not None else kept, skip_special_tokens=False)
        return Completion(text, "stop" if end is not None else "length", len(kept), token_ids=kept)


def prompt_ids(tokenizer: Any, req: GenerationRequest, max_prompt_length: int) -> list[int]:
    """Prompt token ids (chat template applied to `messages`), left-truncated to max_prompt_length:
    the end of a prompt (the question, the generation prompt) matters most."""
    if req.messages is not None:
        text = tokenizer.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True)
    else:
        text = req.prompt
    return tokenizer(text, add_special_tokens=False)["input_ids"][-max_prompt_length:]


def completion_ids(tokenizer: Any, completion: Completion) -> list[int]:
    """The completion's token ids: as sampled when the engine returned them, else re-tokenized (+ EOS
    when it stopped naturally)."""
    if completion.token_ids is not None:
        return list(completion.token_ids)
    ids = tokenizer(completion.text, add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id] if completion.finish_reason == "stop" else ids
