"""Small models with Hugging Face `transformers`: batched `generate` on CPU or GPU.

For tests (tiny local models), CPU dry runs and small students; a GPU node serving a real
checkpoint should use `vllm` or the `openai` engine against `vllm serve`.

Chat requests are rendered with the tokenizer's own chat template. Requests are grouped by
sampling parameters (one `generate` call takes one set) and run `batch_size` prompts at a time,
left-padded, `num_return_sequences = n`. The completion is cut at the first end-of-sequence token
(`finish_reason = "stop"`) or runs to `max_tokens` (`"length"`). Special tokens other than EOS and
padding stay in the text, because `<think>` is one in some tokenizers.

>>> eng = TransformersEngine("/tmp/tiny-qwen", batch_size=8)          # doctest: +SKIP
>>> eng.generate([GenerationRequest("r", messages=[{"role": "user", "content": "2+2?"}])])  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from dataengine.engines.base import Completion, Engine, GenerationRequest, GenerationResult, SamplingParams


def cache_kwarg(model: Any) -> str:
    """The name a model's forward takes its KV cache by: transformers renamed `past_key_values` to
    `cache` (5.24 has `cache`; 5.19, which the vLLM venv pins, only `past_key_values`)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class TransformersEngine(Engine):
    """Args:
        model: a local folder or hub id (`from_pretrained`).
        device: `auto` (CUDA when available), `cpu`, `cuda`, `cuda:1`, ….
        dtype: `auto`, `float32`, `bfloat16`, `float16`.
        batch_size: prompts per `generate` call (each yields n sequences).
    """

    name = "transformers"

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", batch_size: int = 8,
                 trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ValueError("transformers engine: batch_size must be >= 1")
        self.model = str(model)
        self.batch_size = batch_size
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"  # decoder-only: pad on the left so generation continues the prompt
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.lm = AutoModelForCausalLM.from_pretrained(self.model, dtype=torch_dtype, trust_remote_code=trust_remote_code)
        self.lm.to(self.device).eval()
        eos = self.lm.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])

    @classmethod
    def from_model(cls, lm: Any, tokenizer: Any, batch_size: int = 8) -> TransformersEngine:
        """Wrap a model already in memory, e.g. the GRPO trainer's live policy, so rollouts always use
        its current weights. The caller owns the model: the engine neither moves it nor changes its
        train/eval mode."""
        if batch_size < 1:
            raise ValueError("transformers engine: batch_size must be >= 1")
        self = cls.__new__(cls)
        self.model = getattr(lm.config, "name_or_path", None) or "in-memory"
        self.batch_size = batch_size
        self.device = str(next(lm.parameters()).device)
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.lm = lm
        eos = lm.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        return self

    def render(self, req: GenerationRequest) -> str:
        if req.messages is not None:
            return self.tokenizer.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True)
        assert req.prompt is not None
        return req.prompt

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results: dict[int, GenerationResult] = {}
        groups: dict[SamplingParams, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.params, []).append(i)
        for params, idxs in groups.items():
            for start in range(0, len(idxs), self.batch_size):
                chunk = idxs[start : start + self.batch_size]
                try:
                    out = self._batch([requests[i] for i in chunk], params)
                except (RuntimeError, ValueError) as e:
                    if len(chunk) == 1:
                        out = [GenerationResult(requests[chunk[0]].request_id, [], error=f"{type(e).__name__}: {e}")]
                    else:
                        # One bad prompt (too long, say) must not fail its batch-mates: retry alone.
                        out = [self.generate([requests[i]])[0] for i in chunk]
                for i, res in zip(chunk, out):
                    results[i] = res
        return [results[i] for i in range(len(requests))]

    def _batch(self, reqs: list[GenerationRequest], params: SamplingParams) -> list[GenerationResult]:
        import torch

        t0 = time.perf_counter()
        texts = [self.render(r) for r in reqs]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        sample = params.temperature > 0
        # Greedy decoding gives the same sequence n times; transformers refuses n > 1 without
        # sampling, so decode once and repeat it.
        per_prompt = params.n if sample else 1
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "num_return_sequences": per_prompt,
            "do_sample": sample,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if sample:
            gen_kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()  # [batch]
        with torch.inference_mode():
            if per_prompt > 1 and enc["input_ids"].shape[1] > 1 and not self.lm.config.is_encoder_decoder:
                enc = self._shared_prefill(enc, per_prompt, gen_kwargs)
            out = self.lm.generate(**enc, **gen_kwargs)  # [batch * n, prompt_len + new]
        new = out[:, enc["input_ids"].shape[1] :].tolist()  # [batch * n, new]
        elapsed = time.perf_counter() - t0
        results = []
        for b, req in enumerate(reqs):
            comps = []
            for k in range(params.n):
                comps.append(self._completion(new[b * per_prompt + k % per_prompt], params))
            results.append(GenerationResult(req.request_id, comps, prompt_tokens=int(prompt_lens[b]),
                                            latency_s=elapsed, rendered_prompt=texts[b]))
        return results

    def _shared_prefill(self, enc: Any, n: int, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The n samples of a prompt share it: run each prompt (all but its last token) once and give
        every sample a copy of its KV cache, instead of `num_return_sequences` prefilling the same prompt
        n times (GRPO: G completions per prompt; the prompt is most of the rollout's compute). Returns
        the inputs expanded to n rows per prompt, in `num_return_sequences` order; `generate` then runs
        only the last prompt token and the new ones. Positions as `generate` numbers left-padded rows."""
        from transformers import DynamicCache

        key = cache_kwarg(self.lm)
        ids, mask = enc["input_ids"], enc["attention_mask"]  # [b, Lp]
        position_ids = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)  # [b, Lp]
        cache = DynamicCache(config=self.lm.config)
        self.lm(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=position_ids[:, :-1],
                use_cache=True, logits_to_keep=1, **{key: cache})
        cache.batch_repeat_interleave(n)  # [b * n, heads, Lp - 1, d] per layer
        gen_kwargs.update({key: cache, "num_return_sequences": 1})
        return {"input_ids": ids.repeat_interleave(n, dim=0), "attention_mask": mask.repeat_interleave(n, dim=0)}

    def _completion(self, ids: list[int], params: SamplingParams) -> Completion:
        end = next((j for j, t in enumerate(ids) if t in self.eos_ids), None)
        finish = "stop" if end is not None else "length"
        kept = ids[:end] if end is not None else ids
        text = self.tokenizer.decode(kept, skip_special_tokens=False)
        # The sampled ids through the EOS (what a trainer scores); unknown once a stop string cuts the text.
        token_ids: list[int] | None = ids[: end + 1] if end is not None else ids
        for s in params.stop:
            cut = text.find(s)
            if cut >= 0:
                text, finish, token_ids = text[:cut], "stop", None
        return Completion(text, finish, len(kept) + (1 if end is not None else 0), token_ids=token_ids)

    def close(self) -> None:
        self.__dict__.pop('lm', None)
