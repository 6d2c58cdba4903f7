"""Format: the R1 readable shape — one well-formed think block, then a non-empty answer.

Checks, in the order a verdict reports them (the first failure is the reason):

| reason | failure |
|---|---|
| `empty_completion` | nothing at all |
| `field_not_text` | completion/reasoning/answer is not a string (a broken row) |
| `truncated_length` | finish_reason `length` (the sampler cut it off) |
| `think_not_closed` | the think block never closed (cut off, or the tag is missing) |
| `no_think_block` | no think markers at all (`require_think`) |
| `think_tags_repeated` | more than one opening or closing marker |
| `think_tags_out_of_order` | a closing marker before the opening one |
| `empty_reasoning` / `empty_answer` | shorter than `min_reasoning_chars` / `min_answer_chars` |
| `leaked_special_token` | a chat marker or special token in the text (`<|im_end|>`, `<｜end▁of▁sentence｜>`, …) |
| `missing_boxed_answer` | a math trace whose answer has no `\\boxed{}` |
| `missing_code_block` | a code trace whose answer has no fenced block |
| `too_short_chars` / `too_long_chars` / `too_many_tokens` | length bounds |

>>> s = score([FilterInput(completion="<think>a</think>", domain="math")])[0]
>>> decide(s, FormatThresholds())
(False, 'empty_answer')
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from filters.base import FilterInput, FilterSpec, Thresholds, register_filter
from filters.text import safe_text

# Markers per think format (mirrors dataengine.records.THINK_FORMATS; filters import nothing of
# ours, so the three marker pairs are repeated here).
MARKERS: dict[str, tuple[str, str]] = {
    "think": ("<think>", "</think>"),
    "prompt_opened": ("<think>", "</think>"),
    "sky_t1": ("<|begin_of_thought|>", "<|end_of_thought|>"),
}

# Special tokens and chat markers of the common chat templates (Qwen/ChatML, Llama 3, DeepSeek
# R1/V3 — which use fullwidth bars and U+2581 — Mistral, Phi, generic </s>). Their presence in a
# completion means the engine did not stop, or a template leaked into the data.
LEAKED_TOKENS = (
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|start_header_id|>",
    "<|end_header_id|>", "<|begin_of_text|>", "<|end_of_text|>", "<｜end▁of▁sentence｜>",
    "<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<|User|>", "<|Assistant|>",
    "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "[INST]", "[/INST]", "</s>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
)
_LEAK_RE = re.compile("|".join(re.escape(t) for t in LEAKED_TOKENS))
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_FENCE_RE = re.compile(r"```")


@dataclass
class FormatThresholds(Thresholds):
    """Format thresholds; `None` switches a check off."""

    require_think: bool = field(default=True, metadata={"help": "a think block must be present (R1 readable format: <think>…</think> then summary)"})
    allow_length_finish: bool = field(default=False, metadata={"help": "keep traces whose finish_reason is `length`"})
    min_reasoning_chars: int | None = field(default=1, metadata={"help": "reasoning shorter than this → empty_reasoning"})
    min_answer_chars: int | None = field(default=1, metadata={"help": "answer after the think block shorter than this → empty_answer"})
    check_leaked_tokens: bool = field(default=True, metadata={"help": "reject chat markers / special tokens in the text"})
    boxed_answer_domains: list[str] = field(default_factory=lambda: ["math"], metadata={"help": "domains whose answer needs a \\boxed{} (R1 math rule reward)"})
    code_block_domains: list[str] = field(default_factory=lambda: ["code"], metadata={"help": "domains whose answer needs a fenced code block"})
    min_completion_chars: int | None = field(default=None, metadata={"help": "completion shorter than this → too_short_chars"})
    # R1 samples with a 32,768-token limit (arXiv 2501.12948 §3); ~4 chars per token.
    max_completion_chars: int | None = field(default=200_000, metadata={"help": "completion longer than this → too_long_chars"})
    max_completion_tokens: int | None = field(default=32_768, metadata={"help": "completion_tokens above this → too_many_tokens (R1 max generation length)"})


def _detect_format(completion: str) -> str:
    if "<|begin_of_thought|>" in completion:
        return "sky_t1"
    if completion.lstrip()[:16].startswith("<think>"):
        return "think"
    if "</think>" in completion:
        return "prompt_opened"
    return "none"


def _score_one(inp: FilterInput) -> dict[str, Any]:
    completion, fixes = safe_text(inp.completion)
    reasoning, f2 = safe_text(inp.reasoning)
    answer, f3 = safe_text(inp.answer)
    fmt = inp.think_format if inp.think_format in (*MARKERS, "none") else _detect_format(completion)
    s: dict[str, Any] = {
        "domain": inp.domain if isinstance(inp.domain, str) else None,
        "language": inp.language if isinstance(inp.language, str) else None,
        "think_format": fmt,
        "finish_reason": inp.finish_reason if isinstance(inp.finish_reason, str) else None,
        "completion_chars": len(completion),
        "completion_tokens": inp.completion_tokens if isinstance(inp.completion_tokens, int) else None,
        "sanitized": sorted(set(fixes + f2 + f3)),
        "spans": {},
    }
    think_closed = inp.think_closed
    if fmt in MARKERS:
        open_tag, close_tag = MARKERS[fmt]
        n_open, n_close = completion.count(open_tag), completion.count(close_tag)
        first_open, first_close = completion.find(open_tag), completion.find(close_tag)
        expected_open = 0 if fmt == "prompt_opened" else 1
        s["n_open"], s["n_close"] = n_open, n_close
        s["tags_repeated"] = n_open > expected_open or n_close > 1
        s["tags_out_of_order"] = expected_open == 1 and first_close >= 0 and (first_open < 0 or first_close < first_open)
        if think_closed is None:
            think_closed = n_close > 0
        if not reasoning and not answer and completion:
            # Split here when the caller gave only the raw completion.
            body = completion[first_open + len(open_tag):] if first_open >= 0 else completion
            end = body.find(close_tag)
            reasoning, answer = (body, "") if end < 0 else (body[:end], body[end + len(close_tag):])
            if fmt == "sky_t1":
                answer = answer.replace("<|begin_of_solution|>", "").replace("<|end_of_solution|>", "")
            reasoning, answer = reasoning.strip(), answer.strip()
        if s["tags_repeated"]:
            second = completion.find(open_tag if n_open > expected_open else close_tag,
                                     (first_open if n_open > expected_open else first_close) + 1)
            s["spans"]["repeated_tag"] = ["completion", second, second + len(open_tag)]
    else:
        if not reasoning and not answer:
            answer = completion.strip()
        s["n_open"] = s["n_close"] = 0
        s["tags_repeated"] = s["tags_out_of_order"] = False
        think_closed = None if think_closed is None else think_closed
    s["think_closed"] = think_closed
    s["reasoning_chars"] = len(reasoning.strip())
    s["answer_chars"] = len(answer.strip())
    leak = _LEAK_RE.search(completion)
    s["leaked_tokens"] = sorted(set(_LEAK_RE.findall(completion)))[:10] if leak else []
    if leak:
        s["spans"]["leaked_token"] = ["completion", leak.start(), leak.end()]
    s["has_boxed"] = bool(_BOXED_RE.search(answer)) if answer else False
    s["answer_code_fences"] = len(_FENCE_RE.findall(answer)) // 2
    return s


def score(inputs: Sequence[FilterInput]) -> list[dict[str, Any]]:
    return [_score_one(i) for i in inputs]


def decide(s: Mapping[str, Any], t: FormatThresholds) -> tuple[bool, str | None]:
    domain = s.get("domain")
    if s.get("completion_chars", 0) == 0 and s.get("reasoning_chars", 0) == 0 and s.get("answer_chars", 0) == 0:
        return False, "empty_completion"
    if "not_a_string" in s.get("sanitized", ()):
        return False, "field_not_text"  # a number or list where text belongs: a broken row
    if s.get("finish_reason") == "length" and not t.allow_length_finish:
        return False, "truncated_length"
    if s.get("think_closed") is False:
        return False, "think_not_closed"
    if t.require_think and s.get("think_format") == "none" and not s.get("reasoning_chars"):
        return False, "no_think_block"
    if s.get("tags_repeated"):
        return False, "think_tags_repeated"
    if s.get("tags_out_of_order"):
        return False, "think_tags_out_of_order"
    if t.min_reasoning_chars is not None and t.require_think and s.get("reasoning_chars", 0) < t.min_reasoning_chars:
        return False, "empty_reasoning"
    if t.min_answer_chars is not None and s.get("answer_chars", 0) < t.min_answer_chars:
        return False, "empty_answer"
    if t.check_leaked_tokens and s.get("leaked_tokens"):
        return False, "leaked_special_token"
    if domain in t.boxed_answer_domains and not s.get("has_boxed"):
        return False, "missing_boxed_answer"
    if domain in t.code_block_domains and not s.get("answer_code_fences"):
        return False, "missing_code_block"
    n = s.get("completion_chars", 0)
    if t.min_completion_chars is not None and n < t.min_completion_chars:
        return False, "too_short_chars"
    if t.max_completion_chars is not None and n > t.max_completion_chars:
        return False, "too_long_chars"
    tokens = s.get("completion_tokens")
    if t.max_completion_tokens is not None and tokens is not None and tokens > t.max_completion_tokens:
        return False, "too_many_tokens"
    return True, None


SPEC = register_filter(FilterSpec(
    "format", score, decide, FormatThresholds,
    span_for_reason={"leaked_special_token": "leaked_token", "think_tags_repeated": "repeated_tag"},
))
