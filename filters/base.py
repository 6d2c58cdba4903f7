"""What every filter shares: the input record, the result, thresholds with overrides, the registry.

A filter is two pure functions:

- `score(inputs, **params) -> list[dict]`: the expensive part, done once per trace and stored in
  full (`filter_results.scores`);
- `decide(scores, thresholds) -> (passed, reason)`: cheap, so a threshold change re-decides every
  stored verdict without re-scoring (`dataengine filter --rethreshold`, `dataengine tune`).

Scores carry `domain` and `language` so `decide` can apply per-domain and per-language overrides
from the scores alone. Reasons are stable snake_case names of the failure; `None` means passed.

>>> from filters import run_filters
>>> r = run_filters([{"completion": "<think>2+2=4</think>So \\\\boxed{4}.", "domain": "math"}], ["format"])
>>> r[0]["format"].passed, r[0]["format"].reason
(True, None)
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class FilterInput:
    """The light view of a trace that filters read (no dependency on `dataengine.records`).

    Only `completion` (or `reasoning`/`answer`) is needed; the rest sharpens the verdict.
    """

    completion: Any = ""
    reasoning: Any = None
    answer: Any = None
    think_closed: bool | None = None
    think_format: str | None = None
    finish_reason: str | None = None
    domain: str | None = None
    language: str | None = None
    prompt: Any = None
    completion_tokens: int | None = None
    trace_id: str | None = None
    # "reasoning" (default) or "non_reasoning" (SFT rows): picks the thresholds' `by_bucket` profile.
    bucket: str | None = None


@dataclass(slots=True)
class FilterResult:
    passed: bool
    reason: str | None
    scores: dict[str, Any] = field(default_factory=dict)


def as_input(obj: Any) -> FilterInput:
    """A FilterInput from a FilterInput, a mapping, or any object with the same attributes."""
    if isinstance(obj, FilterInput):
        return obj
    names = [f.name for f in dataclasses.fields(FilterInput)]
    if isinstance(obj, Mapping):
        return FilterInput(**{n: obj.get(n) for n in names if n in obj})
    return FilterInput(**{n: getattr(obj, n) for n in names if hasattr(obj, n)})


@dataclass
class Thresholds:
    """Base of each filter's thresholds: per-domain and per-language overrides.

    `by_domain: {"code": {"max_code_blocks": None}}` applies to traces of that domain;
    `by_language` likewise (the language-specific override wins over the domain one);
    `by_bucket` is the profile of a bucket (`non_reasoning`: SFT rows without a think block), the
    most general of the three (domain and language overrides win over it).
    """

    by_bucket: dict[str, dict[str, Any]] = field(default_factory=dict, metadata={"help": "per-bucket profile: {bucket: {field: value}} (reasoning / non_reasoning)"})
    by_domain: dict[str, dict[str, Any]] = field(default_factory=dict, metadata={"help": "per-domain overrides: {domain: {field: value}}"})
    by_language: dict[str, dict[str, Any]] = field(default_factory=dict, metadata={"help": "per-language overrides: {lang: {field: value}}"})

    def validate(self) -> None:
        known = {f.name for f in dataclasses.fields(self)} - {"by_domain", "by_language", "by_bucket"}
        for kind, table in (("by_bucket", self.by_bucket), ("by_domain", self.by_domain), ("by_language", self.by_language)):
            for key, over in table.items():
                if not isinstance(over, Mapping):
                    raise ValueError(f"{kind}.{key}: expected a mapping of threshold overrides")
                bad = set(over) - known
                if bad:
                    raise ValueError(f"{kind}.{key}: unknown thresholds {sorted(bad)}; known: {sorted(known)}")

    def resolve(self, domain: str | None, language: str | None, bucket: str | None = None) -> Thresholds:
        """These thresholds with the overrides for `bucket`, `domain` and `language` applied."""
        over: dict[str, Any] = {}
        if bucket and bucket in self.by_bucket:
            over.update(self.by_bucket[bucket])
        if domain and domain in self.by_domain:
            over.update(self.by_domain[domain])
        if language and language in self.by_language:
            over.update(self.by_language[language])
        return dataclasses.replace(self, **over) if over else self


@dataclass(frozen=True)
class FilterSpec:
    name: str
    score: Callable[..., list[dict[str, Any]]]
    decide: Callable[[Mapping[str, Any], Any], tuple[bool, str | None]]
    thresholds: type[Thresholds]
    # reason → key in scores["spans"] naming the offending (part, start, end), for `sample`.
    span_for_reason: Mapping[str, str] = field(default_factory=dict)


FILTERS: dict[str, FilterSpec] = {}


def register_filter(spec: FilterSpec) -> FilterSpec:
    FILTERS[spec.name] = spec
    return spec


def get_filter(name: str) -> FilterSpec:
    _load_builtin()
    try:
        return FILTERS[name]
    except KeyError:
        raise KeyError(f"unknown filter {name!r}; known: {', '.join(sorted(FILTERS))}") from None


def filter_names() -> list[str]:
    _load_builtin()
    return list(FILTERS)


def _load_builtin() -> None:
    from filters import format as _f  # noqa: F401
    from filters import language_mixing as _l  # noqa: F401
    from filters import readability as _r  # noqa: F401


def safe_decide(spec: FilterSpec, scores: Mapping[str, Any], thresholds: Thresholds) -> tuple[bool, str | None]:
    """`spec.decide` with overrides resolved; a scoring error stays an explicit failure."""
    if "error" in scores:
        return False, "filter_error"
    th = thresholds.resolve(scores.get("domain"), scores.get("language"), scores.get("bucket"))
    return spec.decide(scores, th)


def score_batch(spec: FilterSpec, inputs: Sequence[FilterInput], **params: Any) -> list[dict[str, Any]]:
    """Score a batch; if the batch call raises, score one by one so one bad trace cannot sink
    the rest, and record the error for that trace (verdict `filter_error`, never a silent pass)."""
    try:
        return spec.score(inputs, **params)
    except Exception:  # noqa: BLE001 - isolated per trace below, then recorded explicitly
        out = []
        for inp in inputs:
            try:
                out.append(spec.score([inp], **params)[0])
            except Exception as e:  # noqa: BLE001
                out.append({
                    "error": f"{type(e).__name__}: {e}",
                    "traceback": traceback.format_exc(limit=-4)[-2000:],  # the innermost frames
                    "domain": inp.domain if isinstance(inp.domain, str) else None,
                    "language": inp.language if isinstance(inp.language, str) else None,
                })
        return out


def run_filters(
    items: Iterable[Any],
    names: Sequence[str] | None = None,
    thresholds: Mapping[str, Thresholds] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, FilterResult]]:
    """Score and decide `items` (FilterInput, mappings or objects) with the named filters.

    Returns one `{filter_name: FilterResult}` per item, in order.
    """
    inputs = [as_input(x) for x in items]
    names = list(names) if names is not None else filter_names()
    out: list[dict[str, FilterResult]] = [{} for _ in inputs]
    for name in names:
        spec = get_filter(name)
        th = (thresholds or {}).get(name) or spec.thresholds()
        scores = score_batch(spec, inputs, **dict((params or {}).get(name, {})))
        for i, s in enumerate(scores):
            passed, reason = safe_decide(spec, s, th)
            out[i][name] = FilterResult(passed, reason, s)
    return out
