"""Format: the R1 readable shape — one well-formed think block, then a complete answer.

The split is `filters.split.split_completion` (the one every stage uses); truncation verdicts are
`filters.truncation`; the final answer is `filters.answer.locate_final_answer` (the one the math
verifier grades). Checks, in the order a verdict reports them (the first failure is the reason):

| reason | failure |
|---|---|
| `empty_completion` | nothing at all |
| `field_not_text` | completion/reasoning/answer is not a string (a broken row) |
| `truncated_length` | finish_reason `length` (the sampler cut it off) |
| `think_not_closed` | the think block never closed (cut off, or the tag is missing) |
| `no_think_block` | no think markers at all (`require_think`; off for the `non_reasoning` bucket) |
| `think_tags_repeated` | more than one opening or closing marker, or a marker in the answer |
| `think_tags_out_of_order` | a closing marker before the opening one |
| `empty_reasoning` / `empty_answer` | shorter than `min_reasoning_chars` / `min_answer_chars` (no summary) |
| `truncated_partial_token` … `truncated_mid_sentence` | the answer is cut off (`filters.truncation`) |
| `leaked_special_token` | a chat marker or special token in the text (`<|im_end|>`, `<｜end▁of▁sentence｜>`, …) |
| `missing_final_answer` | a math trace whose answer has no `\\boxed{}`, "Answer:" line, "final answer is" or bold result |
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

from filters.answer import locate_final_answer
from filters.base import FilterInput, FilterSpec, Thresholds, register_filter
from filters.split import THINK_FORMATS, split_completion
from filters.text import safe_text
from filters.truncation import TRUNCATION_REASONS, truncation_reason

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
# Every token holds one of these: when none is in the text (`in` runs at memchr speed), the
# 25-way alternation need not scan 20 KB of reasoning.
_LEAK_MARKS = ("<|", "<\uff5c", "[INST]", "[/INST]", "</s>")
assert all(any(m in t for m in _LEAK_MARKS) for t in LEAKED_TOKENS)


def _find_leak(text: str) -> re.Match[str] | None:
    return _LEAK_RE.search(text) if any(m in text for m in _LEAK_MARKS) else None
_FENCE_RE = re.compile(r"```")


@dataclass
class FormatThresholds(Thresholds):
    """Format thresholds; `None` switches a check off."""

    require_think: bool = field(default=True, metadata={"help": "a think block must be present (R1 readable format: <think>…</think> then summary); off in the non_reasoning profile"})
    allow_length_finish: bool = field(default=False, metadata={"help": "keep traces whose finish_reason is `length`"})
    min_reasoning_chars: int | None = field(default=1, metadata={"help": "reasoning shorter than this → empty_reasoning"})
    min_answer_chars: int | None = field(default=1, metadata={"help": "answer after the think block shorter than this → empty_answer (no summary)"})
    check_truncation: bool = field(default=True, metadata={"help": "reject answers cut off mid-token / mid-formula / mid-sentence (truncated_* reasons); calibrated on tests/labelled_traces.tsv"})
    check_leaked_tokens: bool = field(default=True, metadata={"help": "reject chat markers / special tokens in the text"})
    final_answer_domains: list[str] = field(default_factory=lambda: ["math"], metadata={"help": "domains whose answer must state a final answer the math verifier can extract (\\boxed{}, 'Answer:', 'final answer is', bold)"})
    code_block_domains: list[str] = field(default_factory=lambda: ["code"], metadata={"help": "domains whose answer needs a fenced code block"})
    # The non_reasoning bucket (SFT rows: alpaca, sharegpt, identity …) has no think block and no
    # boxed math answer to find; truncation, leaks and length bounds still apply.
    by_bucket: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "non_reasoning": {"require_think": False, "final_answer_domains": [], "code_block_domains": []}},
        metadata={"help": "per-bucket profile (non_reasoning: no think block required, no final-answer/code-block rule)"})
    min_completion_chars: int | None = field(default=None, metadata={"help": "completion shorter than this → too_short_chars"})
    # R1 samples with a 32,768-token limit (arXiv 2501.12948 §3); ~4 chars per token.
    max_completion_chars: int | None = field(default=200_000, metadata={"help": "completion longer than this → too_long_chars"})
    max_completion_tokens: int | None = field(default=32_768, metadata={"help": "completion_tokens above this → too_many_tokens (R1 max generation length)"})


def _score_one(inp: FilterInput) -> dict[str, Any]:
    completion, fixes = safe_text(inp.completion)
    reasoning, f2 = safe_text(inp.reasoning)
    answer, f3 = safe_text(inp.answer)
    fmt = inp.think_format if inp.think_format in THINK_FORMATS else "auto"
    s: dict[str, Any] = {
        "domain": inp.domain if isinstance(inp.domain, str) else None,
        "language": inp.language if isinstance(inp.language, str) else None,
        "bucket": inp.bucket if isinstance(inp.bucket, str) else None,
        "finish_reason": inp.finish_reason if isinstance(inp.finish_reason, str) else None,
        "completion_chars": len(completion),
        "completion_tokens": inp.completion_tokens if isinstance(inp.completion_tokens, int) else None,
        "sanitized": sorted(set(fixes + f2 + f3)),
        "spans": {},
    }
    think_closed = inp.think_closed
    if completion:
        sp = split_completion(completion, fmt)
        fmt = sp.think_format
        if not reasoning and not answer:
            reasoning, answer = sp.reasoning, sp.answer
        if think_closed is None:
            think_closed = sp.think_closed
        s["tags_problem"] = sp.problem
        if sp.problem:
            s["spans"]["repeated_tag"] = ["completion", sp.problem_at, sp.problem_at + 1]
        s["answer_closed"] = sp.answer_closed
    else:
        fmt = fmt if fmt != "auto" else ("think" if reasoning else "none")
        s["tags_problem"], s["answer_closed"] = None, None
    s["think_format"] = fmt
    s["think_closed"] = think_closed
    s["reasoning_chars"] = len(reasoning.strip())
    s["answer_chars"] = len(answer.strip())
    trunc, at = truncation_reason(answer) if think_closed is not False else (None, -1)
    s["truncation"] = trunc
    if trunc:
        s["spans"]["truncation"] = ["answer", at, len(answer.rstrip())]
    leak = _find_leak(completion or answer)
    s["leaked_tokens"] = sorted(set(_LEAK_RE.findall(completion or answer)))[:10] if leak else []
    if leak:
        s["spans"]["leaked_token"] = ["completion" if completion else "answer", leak.start(), leak.end()]
    final = locate_final_answer(answer) if answer else None
    s["final_answer_method"] = final.method if final else None
    if final:
        s["spans"]["final_answer"] = ["answer", final.start, final.end]
    elif answer:
        tail = max(0, len(answer) - 300)
        s["spans"]["final_answer"] = ["answer", tail, len(answer)]  # where one was expected
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
    if s.get("tags_problem"):
        return False, s["tags_problem"]
    if t.min_reasoning_chars is not None and t.require_think and s.get("reasoning_chars", 0) < t.min_reasoning_chars:
        return False, "empty_reasoning"
    if t.min_answer_chars is not None and s.get("answer_chars", 0) < t.min_answer_chars:
        return False, "empty_answer"
    if s.get("truncation") and t.check_truncation:
        return False, s["truncation"]
    if t.check_leaked_tokens and s.get("leaked_tokens"):
        return False, "leaked_special_token"
    if domain in t.final_answer_domains and not s.get("final_answer_method"):
        return False, "missing_final_answer"
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
    span_for_reason={"leaked_special_token": "leaked_token", "think_tags_repeated": "repeated_tag",
                     "think_tags_out_of_order": "repeated_tag", "missing_final_answer": "final_answer",
                     **{r: "truncation" for r in TRUNCATION_REASONS}},
))
