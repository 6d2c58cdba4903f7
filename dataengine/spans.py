"""The span of a trace that decided a filter verdict, for `dataengine sample`.

A filter may record it: a generic ``scores["span"] = [part, start, end]``, or a named entry of
``scores["spans"]`` that its spec maps from the reason (`FilterSpec.span_for_reason`). For every
other reason the span is located here from the reason and the text, so `sample` never falls
back to "the start of the reasoning" (which showed nothing of why a trace was rejected).

>>> locate_span("format", "missing_final_answer", {}, {"completion": "x", "reasoning": "r", "answer": "So 55 liters."})
('answer', 0, 13)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

Span = tuple[str, int, int]

# How much of the end of a part is shown when the reason is about how the part ends.
_TAIL = 300

_END_OF_ANSWER = ("missing_boxed_answer", "missing_code_block", "missing_final_answer", "missing_summary",
                  "empty_answer", "no_final_answer", "answer_unparseable")
_END_OF_COMPLETION = ("truncated_length", "think_not_closed", "too_long_chars", "too_many_tokens")
_WHOLE = ("empty_completion", "empty_reasoning", "too_short_chars", "field_not_text")
_TAGS = re.compile(r"</?think>|<\|(?:begin|end)_of_(?:thought|solution)\|>")
_SPECIAL = re.compile(r"<\|[^|<>\n]{1,40}\|>|<｜[^｜<>\n]{1,40}｜>|<\|[a-z_]{1,20}$|<｜[^｜\n]{0,20}$")
_REFLECTION = re.compile(r"\b(?:wait|hmm|let me (?:check|verify|recheck|re-examine|recalculate)|double-check|alternatively)\b",
                         re.IGNORECASE)


def _given(scores: Mapping[str, Any], key: str | None) -> Span | None:
    """A span the filter recorded: [part, start, end] or {part, start, end}."""
    v = scores.get("span") if key is None else (scores.get("spans") or {}).get(key)
    if isinstance(v, Mapping):
        v = [v.get("part"), v.get("start"), v.get("end")]
    if isinstance(v, (list, tuple)) and len(v) >= 3 and isinstance(v[0], str):
        try:
            return v[0], int(v[1]), int(v[2])
        except (TypeError, ValueError):
            return None
    return None


def _tail(part: str, text: str) -> Span:
    return part, max(0, len(text) - _TAIL), len(text)


def _second(text: str, needle: str) -> int:
    first = text.find(needle)
    second = text.find(needle, first + 1) if first >= 0 else -1
    return second if second >= 0 else first


def _repeated(part: str, text: str, units: list[str]) -> Span | None:
    """The second occurrence of the first unit (line, paragraph) that occurs twice."""
    seen: set[str] = set()
    for u in units:
        if u in seen:
            at = _second(text, u)
            return (part, at, at + len(u)) if at >= 0 else None
        seen.add(u)
    return None


def _ngram(part: str, text: str, n: int, top: bool) -> Span | None:
    """The most frequent n-gram (`top`) or the first repeated one, where it occurs a second time."""
    words = text.split()
    grams = [" ".join(words[i : i + n]) for i in range(max(0, len(words) - n + 1))]
    if not grams:
        return None
    if top:
        gram, count = Counter(grams).most_common(1)[0]
        if count < 2:
            return None
    else:
        seen: set[str] = set()
        gram = next((g for g in grams if g in seen or seen.add(g)), None)  # type: ignore[func-returns-value]
        if gram is None:
            return None
    m = re.search(r"\s+".join(map(re.escape, gram.split())), text[_second(text, gram.split()[0]) :])
    if m is None:
        m = re.search(r"\s+".join(map(re.escape, gram.split())), text)
        return (part, m.start(), m.end()) if m else None
    base = _second(text, gram.split()[0])
    return part, base + m.start(), base + m.end()


def locate_span(filter_name: str, reason: str, scores: Mapping[str, Any], texts: Mapping[str, str],
                span_key: str | None = None) -> Span | None:
    """(part, start, end) of the text that decided `reason`, or None when nothing can be pointed at."""
    for given in (_given(scores, None), _given(scores, span_key) if span_key else None):
        if given is not None and given[0] in texts:
            return given
    completion, reasoning, answer = texts.get("completion", ""), texts.get("reasoning", ""), texts.get("answer", "")
    foreign = scores.get("foreign_spans")
    if isinstance(foreign, list) and foreign and isinstance(foreign[0], Mapping):
        f = foreign[0]
        if f.get("part") in texts:
            return str(f["part"]), int(f["start"]), int(f["end"])
    if reason in _END_OF_ANSWER or "answer" in reason or "summary" in reason or "boxed" in reason:
        return _tail("answer", answer) if answer else _tail("completion", completion)
    if reason in _END_OF_COMPLETION or reason.startswith("truncated") or "unclosed" in reason or "unbalanced" in reason:
        return _tail("completion", completion)
    if reason in _WHOLE:
        part = "reasoning" if reason == "empty_reasoning" else "completion"
        return part, 0, len(texts.get(part, ""))
    if reason.startswith("think_tags") or reason == "no_think_block":
        m = _TAGS.search(completion) if reason != "no_think_block" else None
        if reason == "think_tags_repeated" and m is not None:
            m2 = _TAGS.search(completion, m.end())
            m = m2 or m
        return ("completion", m.start(), m.end()) if m else ("completion", 0, min(len(completion), _TAIL))
    if reason == "leaked_special_token" or "special_token" in reason:
        for part in ("answer", "reasoning", "completion"):
            m = _SPECIAL.search(texts.get(part, ""))
            if m:
                return part, m.start(), m.end()
    if reason == "code_block_in_non_code":
        a = reasoning.find("```")
        if a >= 0:
            b = reasoning.find("```", a + 3)
            return "reasoning", a, b + 3 if b >= 0 else len(reasoning)
    if reason == "duplicate_lines":
        lines = [ln.strip() for ln in reasoning.split("\n") if ln.count(" ") >= 2]
        return _repeated("reasoning", reasoning, lines)
    if reason == "duplicate_paragraphs":
        paras = [p.strip() for p in re.split(r"\n\s*\n", reasoning) if p.strip()]
        return _repeated("reasoning", reasoning, paras)
    if reason == "top_ngram_repetition":
        return _ngram("reasoning", reasoning, 2, top=True)
    if reason == "duplicate_ngrams":
        return _ngram("reasoning", reasoning, 5, top=False)
    if reason in ("reflection_loop", "repetition_loop"):
        hits = list(_REFLECTION.finditer(reasoning))
        if hits:  # the densest stretch: the window of 10 phrases that spans the fewest characters
            k = min(10, len(hits))
            i = min(range(len(hits) - k + 1), key=lambda j: hits[j + k - 1].end() - hits[j].start())
            return "reasoning", hits[i].start(), hits[i + k - 1].end()
    if reason == "paragraph_too_long":
        paras = [(m.start(), m.end()) for m in re.finditer(r"\S(?:.|\n(?!\s*\n))*", reasoning)]
        if paras:
            a, b = max(paras, key=lambda p: p[1] - p[0])
            return "reasoning", a, b
    return None


__all__ = ["locate_span"]
