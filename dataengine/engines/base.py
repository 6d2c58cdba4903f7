"""The engine interface: requests in, results out, n samples per request.

Every engine (vllm, openai, transformers, simulated) implements `Engine.generate`; callers (the
generate stage, the generative judge, chain-of-thought augmentation, GRPO rollouts) depend only on
this module.

>>> req = GenerationRequest("r1", messages=[{"role": "user", "content": "1+1?"}], params=SamplingParams(n=2))
>>> req.params.n, req.params.temperature
(2, 0.6)
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings; defaults are the R1 report's (temperature 0.6, top-p 0.95, long outputs)."""

    n: int = 1
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 32768
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "temperature": self.temperature, "top_p": self.top_p,
                "max_tokens": self.max_tokens, "stop": list(self.stop), "seed": self.seed}


@dataclass
class GenerationRequest:
    """One prompt to sample. Give `messages` (chat; the engine applies the chat template) or a
    fully rendered `prompt` string."""

    request_id: str
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError(f"request {self.request_id}: give exactly one of prompt or messages")


@dataclass
class Completion:
    text: str
    # "stop" (natural end), "length" (hit max_tokens), or the engine's own word.
    finish_reason: str | None
    completion_tokens: int | None = None
    # Engine-specific facts about this sample (the simulated engine's `planted_defects`, an
    # OpenAI server's `tokens_apportioned`); the generate stage copies it into the trace metadata.
    metadata: dict[str, Any] = field(default_factory=dict)
    # The sampled token ids, for engines that know them (the GRPO trainer trains on exactly these;
    # re-tokenizing the text can give a different sequence). None: the caller re-tokenizes `text`.
    token_ids: list[int] | None = None
    # Log-prob of each sampled token under the sampler (engines asked for them: vLLM for GRPO's
    # importance-sampling correction). None: not returned.
    logprobs: list[float] | None = None


@dataclass
class GenerationResult:
    """The n completions of one request, or the error that finally failed it (after retries)."""

    request_id: str
    completions: list[Completion]
    prompt_tokens: int | None = None
    latency_s: float | None = None
    rendered_prompt: str | None = None
    error: str | None = None
    # How many attempts the engine made (an HTTP engine retries 429/5xx/timeouts).
    attempts: int = 1
    # The quarantine reason for `error` (e.g. `empty_response`); None: `engine_error`.
    error_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Engine(abc.ABC):
    """A model that samples completions. Subclasses set `name` and implement `generate`."""

    name: str = "engine"
    model: str = "unknown"

    @abc.abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Results in the same order as `requests`; never raises for one failed request (its
        result carries `error`), only for a broken engine."""

    def iter_generate(self, requests: Sequence[GenerationRequest], chunk_size: int = 64) -> Iterator[GenerationResult]:
        """Yield results as they finish, in any order (match them by `request_id`).

        The default generates `chunk_size` requests at a time; engines that can stream (the
        OpenAI engine keeps hundreds of requests in flight) override it, so a caller that writes
        what it has every few seconds never waits for the slowest request of a batch.
        """
        for start in range(0, len(requests), chunk_size):
            yield from self.generate(requests[start : start + chunk_size])

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release GPUs, HTTP clients, worker processes."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


ENGINES: dict[str, str | Callable[..., Engine]] = {
    # name -> factory, or "module:attr" imported on first use (keeps torch/vllm out of startup)
}


def register_engine(name: str, factory: str | Callable[..., Engine]) -> None:
    ENGINES[name] = factory


def get_engine(name: str, **kwargs: Any) -> Engine:
    """Build the engine registered as `name` with its keyword arguments."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}") from None
    if isinstance(factory, str):
        mod, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(mod), attr)
    return factory(**kwargs)
