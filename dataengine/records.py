"""Record types every stage passes along: `Prompt` and `Trace`, mapped 1:1 to the tables.

Ids are deterministic content hashes, so the same input always yields the same id and a
re-ingest or a resumed generation run can tell what it already has.

A completion is split into `reasoning` (inside the think block) and `answer` (after it) by the
markers of its source's think format (`filters.split.split_completion`, re-exported here):

>>> s = split_completion("<think>2+2 is 4.</think>The answer is 4.", "think")
>>> (s.reasoning, s.answer, s.think_closed)
('2+2 is 4.', 'The answer is 4.', True)
>>> split_completion("so far so", "prompt_opened").think_closed  # cut off inside the reasoning
False
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from filters.split import THINK_FORMATS, Split, ThinkFormat, detect_think_format, split_completion  # noqa: F401 - re-exported

# Domains named in DESIGN.md; others are allowed (free-form), these are the ones stages know.
KNOWN_DOMAINS = ("math", "code", "science", "logic", "general", "medical", "writing", "qa", "chat")


def content_hash(*parts: object) -> str:
    """A 32-hex-char blake2b digest of `parts`, joined by a separator no text field contains."""
    joined = "\x1f".join("" if p is None else str(p) for p in parts) + "\x1f"
    return hashlib.blake2b(joined.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def prompt_id_for(prompt: str) -> str:
    """Prompts are identified by their text alone: the same problem text is the same prompt."""
    return content_hash("prompt", prompt)


def trace_id_for(prompt_id: str, sample_idx: int, model: str, sampling_run: str) -> str:
    """DESIGN.md: hash of prompt_id, sample_idx, model and the sampling run."""
    return content_hash("trace", prompt_id, sample_idx, model, sampling_run)


# --------------------------------------------------------------------------------------------
# Think formats: the one split lives in filters.split (the lowest layer) so every stage shares it.
# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Prompt:
    """One row of `prompts`."""

    prompt: str
    source: str = ""
    domain: str = "general"
    language: str | None = None
    reference_answer: str | None = None
    # Code problems: a Python test script (str) or a JSON list of {input, output} cases.
    tests: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    prompt_id: str = ""

    def __post_init__(self) -> None:
        if not self.prompt_id:
            self.prompt_id = prompt_id_for(self.prompt)

    def to_row(self) -> dict[str, Any]:
        # A shallow read of the fields: dataclasses.asdict deep-copies every value, which was half
        # of ingest's time on long traces.
        row = {name: getattr(self, name) for name in _PROMPT_FIELDS}
        row["metadata"] = dumps_metadata(self.metadata)
        return row


@dataclass(slots=True)
class Trace:
    """One row of `traces`: a sampled (or ingested) completion for a prompt."""

    prompt_id: str
    completion: str
    sample_idx: int = 0
    model: str = "unknown"
    sampling_run: str = ""
    engine: str = ""
    source: str = ""
    domain: str = "general"
    language: str | None = None
    sampling_params: dict[str, Any] = field(default_factory=dict)
    rendered_prompt: str | None = None
    reasoning: str = ""
    answer: str = ""
    think_closed: bool | None = None
    think_format: str = "auto"
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    run_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    trace_id: str = ""

    def __post_init__(self) -> None:
        if not self.trace_id:
            self.trace_id = trace_id_for(self.prompt_id, self.sample_idx, self.model, self.sampling_run)
        if not self.reasoning and not self.answer:
            s = split_completion(self.completion, self.think_format)
            self.reasoning, self.answer, self.think_closed, self.think_format = (
                s.reasoning,
                s.answer,
                s.think_closed,
                s.think_format,
            )

    def to_row(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in _TRACE_FIELDS}
        row["metadata"] = dumps_metadata(self.metadata)
        row["sampling_params"] = dumps_metadata(self.sampling_params)
        return row


_PROMPT_FIELDS = tuple(f.name for f in fields(Prompt))
_TRACE_FIELDS = tuple(f.name for f in fields(Trace))


def dumps_metadata(meta: dict[str, Any]) -> str:
    """Metadata is stored as a JSON object so SQL can say `metadata->>'field'`."""
    try:
        return orjson.dumps(meta, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        # Rare values orjson refuses (ints beyond 64 bits, deep nesting): make them plain JSON.
        return json.dumps(_plain_json(meta), ensure_ascii=False, default=str, sort_keys=True, allow_nan=False)


def _plain_json(v: Any) -> Any:
    """Keys as strings, big ints as strings, NaN/inf as null: always valid JSON for DuckDB."""
    if isinstance(v, dict):
        return {str(k): _plain_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain_json(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**64 else str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return str(v)
