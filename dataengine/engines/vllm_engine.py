"""Offline vLLM (`vllm.LLM`) on GPU nodes: the engine for generation at scale.

vLLM is an optional extra (`pip install -e '.[vllm]'`) that only GPU nodes have, so it is
imported inside the constructor; this module always imports.

All requests of a `generate` call go to one `LLM.generate` with one `SamplingParams(n=…)` per
request, so vLLM schedules them together (continuous batching, prefix caching across the n
samples and across prompts that share a few-shot exemplar). Chat requests are rendered with the
model tokenizer's chat template. `tensor_parallel_size` spreads one model over several GPUs.

>>> eng = VLLMEngine("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", tensor_parallel_size=2)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from dataengine.engines.base import Completion, Engine, GenerationRequest, GenerationResult, SamplingParams


def vllm_available() -> tuple[bool, str]:
    """(usable, why not): vLLM importable and a CUDA GPU present."""
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        return False, f"vllm is not installed ({e}); install the `vllm` extra on a GPU node"
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "no CUDA GPU on this machine"
    return True, ""


class VLLMEngine(Engine):
    """Args:
        model: hub id or local folder.
        tensor_parallel_size: GPUs one model instance spans.
        gpu_memory_utilization, max_model_len, dtype, seed, enable_prefix_caching: as in `vllm.LLM`.
        llm_kwargs: anything else `vllm.LLM` accepts.
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        seed: int = 0,
        enable_prefix_caching: bool = True,
        trust_remote_code: bool = False,
        llm_kwargs: dict[str, Any] | None = None,
    ):
        try:
            import vllm
        except ImportError as e:
            raise RuntimeError(
                f"the vllm engine needs vLLM ({e}); install it on a GPU node with pip install -e '.[vllm]', "
                "or use --engine openai against `vllm serve`, or --engine transformers for small models"
            ) from None
        self._vllm = vllm
        self.model = str(model)
        kwargs: dict[str, Any] = dict(
            model=self.model, tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype, seed=seed, enable_prefix_caching=enable_prefix_caching, trust_remote_code=trust_remote_code,
        )
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        kwargs.update(llm_kwargs or {})
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def render(self, req: GenerationRequest) -> str:
        if req.messages is not None:
            return self.tokenizer.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True)
        assert req.prompt is not None
        return req.prompt

    def _params(self, p: SamplingParams) -> Any:
        return self._vllm.SamplingParams(
            n=p.n, temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
            stop=list(p.stop) or None, seed=p.seed,
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if not requests:
            return []
        t0 = time.perf_counter()
        texts = [self.render(r) for r in requests]
        try:
            outs = self.llm.generate(texts, sampling_params=[self._params(r.params) for r in requests], use_tqdm=False)
        except ValueError as e:
            # vLLM rejects the whole call for one bad prompt (too long); isolate it.
            if len(requests) == 1:
                return [GenerationResult(requests[0].request_id, [], rendered_prompt=texts[0], error=f"ValueError: {e}")]
            return [self.generate([r])[0] for r in requests]
        elapsed = time.perf_counter() - t0
        results = []
        for req, text, out in zip(requests, texts, outs):
            comps = [
                Completion(o.text, o.finish_reason, len(o.token_ids), token_ids=list(o.token_ids),
                           metadata={"stop_reason": o.stop_reason} if getattr(o, "stop_reason", None) is not None else {})
                for o in sorted(out.outputs, key=lambda o: o.index)
            ]
            results.append(GenerationResult(req.request_id, comps, prompt_tokens=len(out.prompt_token_ids or []),
                                            latency_s=elapsed, rendered_prompt=text))
        return results

    def close(self) -> None:
        # Free the GPU for whatever runs next in this process (a judge model, a trainer).
        import contextlib
        import gc

        self.__dict__.pop('llm', None)
        gc.collect()
        with contextlib.suppress(Exception):
            import torch

            torch.cuda.empty_cache()
