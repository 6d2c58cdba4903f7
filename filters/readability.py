"""Readability: what the R1 report drops besides mixed languages — long paragraphs, code blocks
in the chain of thought, degenerate repetition — and the summary it keeps after the reasoning.

Reasons (first failure wins):

| reason | failure |
|---|---|
| `paragraph_too_long` | longest reasoning paragraph above `max_paragraph_words` (CJK per character) |
| `code_block_in_non_code` | fenced code in the reasoning of a domain outside `code_domains` |
| `repetition_loop` | one line (or line opening) repeated more than `max_line_repeats` times |
| `duplicate_lines` / `duplicate_paragraphs` | Gopher duplicate line / paragraph fractions |
| `top_ngram_repetition` / `duplicate_ngrams` | Gopher top 2/3/4-gram share, duplicated 5-gram share |
| `reflection_loop` | "wait / let me check again" phrases per 1,000 words above the maximum |
| `missing_summary` | fewer than `min_summary_words` words after the reasoning |

Gopher = Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training
Gopher", Appendix A, Table A1 (the same values datatrove's GopherRepetitionFilter uses).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from filters import text as _text
from filters.base import FilterInput, FilterSpec, Thresholds, register_filter
from filters.split import THINK_FORMATS, split_completion
from filters.text import (
    LATIN_WORD_RE,
    count_latin_words,
    count_words,
    has_non_latin_letter,
    latin1_word_classes,
    lowered,
    mask_non_prose,
    paragraphs,
    safe_text,
)

# Self-reflection markers of long chain-of-thought ("aha" phrases): fine in moderation, a loop
# when they dominate. Counted with str.count on lower-cased text (C speed, no regex).
_FENCE_RE = re.compile("```")
REFLECTION_PHRASES = ("wait", "hmm", "let me check", "let me verify", "double-check", "let me recheck",
                      "alternatively", "let me re-examine", "let me recalculate", "等等", "让我再", "再检查")


@dataclass
class ReadabilityThresholds(Thresholds):
    """Readability thresholds; `None` switches a check off."""

    # R1 drops "long paragraphs" without a number; 300 words keeps ~99% of the real R1-distill /
    # QwQ paragraphs in ../shared/data (see the bench/README figures) and drops walls of text.
    max_paragraph_words: int | None = field(default=300, metadata={"help": "longest reasoning paragraph, in words (CJK per character)"})
    max_code_blocks: int | None = field(default=0, metadata={"help": "fenced code blocks allowed in the reasoning outside code_domains (R1: drop CoT with code blocks)"})
    code_domains: list[str] = field(default_factory=lambda: ["code"], metadata={"help": "domains where code blocks in the reasoning are fine"})
    max_line_repeats: int | None = field(default=20, metadata={"help": "times one sentence (or its first 48 characters) may repeat: more is a repetition loop"})
    max_dup_line_frac: float | None = field(default=0.3, metadata={"help": "duplicate lines / lines (Gopher 0.30)"})
    max_dup_line_char_frac: float | None = field(default=0.2, metadata={"help": "chars in duplicate lines / chars (Gopher 0.20)"})
    max_dup_para_frac: float | None = field(default=0.3, metadata={"help": "duplicate paragraphs / paragraphs (Gopher 0.30)"})
    max_dup_para_char_frac: float | None = field(default=0.2, metadata={"help": "chars in duplicate paragraphs / chars (Gopher 0.20)"})
    max_top_2gram_frac: float | None = field(default=0.20, metadata={"help": "chars of the most frequent 2-gram / word chars (Gopher 0.20)"})
    max_top_3gram_frac: float | None = field(default=0.18, metadata={"help": "same for 3-grams (Gopher 0.18)"})
    max_top_4gram_frac: float | None = field(default=0.16, metadata={"help": "same for 4-grams (Gopher 0.16)"})
    # Gopher uses 0.15 for web text; a chain of thought restates its expressions and re-reads the
    # problem. Calibrated on ../shared/data (tests/labelled_traces.tsv): complete traces reach
    # 0.57 at most (98th percentile 0.29), real loops (a sentence repeated 20+ times) 0.68 at their
    # 10th percentile. 0.60 separates them.
    max_dup_5gram_frac: float | None = field(default=0.60, metadata={"help": "chars in duplicated 5-grams / word chars (Gopher 0.15 for web text; 0.60 from the labelled real traces)"})
    # Gopher's n-gram shares are document statistics: on a 60–110-word worked solution the top
    # 2-gram is the name of the person in the problem. Real loops never trip them (their top
    # 2/3/4-gram shares stay under 0.06 at the median); only long texts are judged.
    min_words_for_ngram_checks: int | None = field(default=300, metadata={"help": "reasoning shorter than this (words) skips the top-n-gram and duplicate-5-gram checks (short worked solutions restate their names and numbers)"})
    max_reflections_per_kword: float | None = field(default=None, metadata={"help": "'wait'/'let me check again' phrases per 1,000 words (off by default: long CoT reflects a lot)"})
    min_summary_words: int | None = field(default=1, metadata={"help": "words after the reasoning (the R1 summary); 0/None: no check"})
    # SFT rows (non_reasoning bucket) have no reasoning, so no summary after it to ask for.
    by_bucket: dict[str, dict[str, Any]] = field(default_factory=lambda: {"non_reasoning": {"min_summary_words": None}},
                                                 metadata={"help": "per-bucket profile (non_reasoning: no summary rule)"})


def ngram_stats_batch(docs: Sequence[list[str]]) -> list[dict[str, float]]:
    """Gopher repetition figures (top 2/3/4-gram char share, duplicated 5-gram char share) for
    many word lists, as datatrove defines them: the compiled kernel per document, else
    `_ngram_stats` (numpy, vectorised over the batch).
    """
    if _text.KERNEL is not None:
        return [_fractions(*_text.KERNEL.ngram_stats(" ".join(d), len(d))[1:]) for d in docs]
    return _ngram_stats([_hashed(d) for d in docs])


def _fractions(total_chars: int, top: Sequence[tuple[int, int]], dup5_chars: int) -> dict[str, float]:
    """The Gopher figures from the compiled kernel's counts, computed as `_ngram_stats` does."""
    total = total_chars or 1
    out = {f"top_{n}gram_frac": round(cnt * chars / total, 4) if cnt > 1 else 0.0 for n, (cnt, chars) in zip((2, 3, 4), top)}
    out["dup_5gram_frac"] = round(dup5_chars / total, 4) if dup5_chars else 0.0
    return out


def _hashed(words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    return (np.fromiter(map(hash, words), dtype=np.int64, count=len(words)),
            np.fromiter(map(len, words), dtype=np.int64, count=len(words)))


# Python's str.isspace() over Latin-1, so the bytes below split exactly where str.split() does.
_SPACE = np.array([chr(i).isspace() for i in range(256)])
_MOD = 1 << 64
_BASE = 0x100000001B3  # odd: invertible modulo 2**64
_POW = np.ones(1, dtype=np.uint64)  # _BASE**i and _BASE**-i modulo 2**64, grown on demand
_INV = np.ones(1, dtype=np.uint64)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    global _POW, _INV
    if len(_POW) < n:
        m = max(n, 2 * len(_POW))
        _POW = np.cumprod(np.r_[np.uint64(1), np.full(m - 1, _BASE, dtype=np.uint64)], dtype=np.uint64)
        _INV = np.cumprod(np.r_[np.uint64(1), np.full(m - 1, pow(_BASE, -1, _MOD), dtype=np.uint64)], dtype=np.uint64)
    return _POW[:n], _INV[:n]


def split_hashed(low: str) -> tuple[np.ndarray, np.ndarray]:
    """(hash, length) of each word of `low.split()`, in order.

    Latin-1 text (most traces) is split and hashed in numpy, without a Python string per word:
    a word's hash is a polynomial of its bytes modulo 2**64, from prefix sums. Other text:
    `hash()` of each word. Hashes are only compared within one document, so either will do
    (n-gram figures differ only on a 64-bit collision)."""
    try:
        b = np.frombuffer(low.encode("latin-1"), dtype=np.uint8)
    except UnicodeEncodeError:
        return _hashed(low.split())
    inside = np.zeros(len(b) + 2, dtype=np.int8)  # 1 inside a word, padded with 0 both ends
    inside[1:-1] = ~_SPACE[b]
    edges = np.flatnonzero(np.diff(inside))
    starts, ends = edges[0::2], edges[1::2]
    pw, inv = _powers(len(b) + 1)
    prefix = np.zeros(len(b) + 1, dtype=np.uint64)
    np.cumsum((b.astype(np.uint64) + np.uint64(1)) * pw[: len(b)], dtype=np.uint64, out=prefix[1:])
    h = (prefix[ends] - prefix[starts]) * inv[starts]
    lens = ends - starts
    return (h ^ (lens.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))).view(np.int64), lens.astype(np.int64)


def _ngram_stats(hashed: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, float]]:
    """The figures of `ngram_stats_batch` from (hash, length) per word of each document.

    Words are hashed once, n-grams are rolling combinations of int64 hashes keyed by document,
    and `pandas.factorize` (a hash table, O(n)) numbers them in order of first appearance — so
    "first occurrence" is where the running maximum of the codes grows.
    """
    import pandas as pd  # a hash-based factorize; numpy only has sort-based unique

    docs = hashed
    out = [{"top_2gram_frac": 0.0, "top_3gram_frac": 0.0, "top_4gram_frac": 0.0, "dup_5gram_frac": 0.0} for _ in docs]
    sizes = np.fromiter((len(d[0]) for d in docs), dtype=np.int64, count=len(docs))
    total_words = int(sizes.sum())
    if total_words < 2:
        return out
    h = np.concatenate([d[0] for d in docs])
    lens = np.concatenate([d[1] for d in docs])
    doc = np.repeat(np.arange(len(docs), dtype=np.int64), sizes)
    total_chars = np.bincount(doc, weights=lens, minlength=len(docs))
    total_chars[total_chars == 0] = 1
    gram, glen = h.copy(), lens.copy()
    mult, salt = np.int64(1_000_003), np.int64(0x9E3779B97F4A7C15 - (1 << 64))
    # An n-gram can repeat only where both its (n-1)-grams (words i..i+n-2 and i+1..i+n-1)
    # repeat, so from n = 3 on only those positions are counted: every repeated n-gram and all
    # its occurrences are among them, and the rest occur once (count 1, never the top, never a
    # duplicate). This shrinks the hash tables ~4x per step on real text; the figures are unchanged.
    repeated: np.ndarray | None = None
    with np.errstate(over="ignore"):
        for n in range(2, 6):
            if total_words < n:
                break
            gram = gram[:-1] * mult + h[n - 1:]  # hash of words[i:i+n]
            glen = glen[:-1] + lens[n - 1:]
            inside = doc[: len(gram)] == doc[n - 1:]  # n-grams inside one document
            if repeated is not None:
                inside &= repeated[:-1] & repeated[1:]
            valid = np.nonzero(inside)[0]
            repeated = np.zeros(len(gram), dtype=bool)
            if len(valid) == 0:
                continue
            d = doc[valid]
            codes, _ = pd.factorize(gram[valid] ^ (d * salt))
            counts = np.bincount(codes)
            repeated[valid] = counts[codes] > 1
            if n <= 4:
                # Most frequent n-gram per document (ties: the longer one), as count << 20 | chars.
                key = counts[codes] * (1 << 20) + np.minimum(glen[valid], (1 << 20) - 1)
                best = np.zeros(len(docs), dtype=np.int64)
                # d is sorted (documents are contiguous): reduceat per document, not the slow ufunc.at
                change = np.ones(len(d), dtype=bool)
                change[1:] = d[1:] != d[:-1]
                starts = np.flatnonzero(change)
                best[d[starts]] = np.maximum.reduceat(key, starts)
                cnt, chars = best >> 20, best & ((1 << 20) - 1)
                frac = np.where(cnt > 1, cnt * chars / total_chars, 0.0)
                for i in np.nonzero(frac)[0]:
                    out[i][f"top_{n}gram_frac"] = round(float(frac[i]), 4)
            else:
                running = np.maximum.accumulate(codes)
                first = np.ones(len(codes), dtype=bool)
                first[1:] = codes[1:] > running[:-1]
                rep = valid[~first]  # start of a repeated 5-gram
                size = total_words + n + 1
                cover = np.bincount(rep, minlength=size) - np.bincount(rep + n, minlength=size)
                covered = np.cumsum(cover)[:total_words] > 0
                dup_chars = np.bincount(doc, weights=lens * covered, minlength=len(docs))
                for i in np.nonzero(dup_chars)[0]:
                    out[i]["dup_5gram_frac"] = round(float(dup_chars[i] / total_chars[i]), 4)
    return out


_CODE_WORD_RE = re.compile(r"[A-Za-z]{3,}")  # a word or identifier; "______" and "x 7_8" are layout
_PROSE_RE = re.compile(r"[A-Za-z]{2,}")
_ITEM_RE = re.compile(r"^(?:[-*+•]|\d+[.)])\s")


def _is_prose_line(ln: str) -> bool:
    """A line (or paragraph) whose repeats mean repetition, not layout."""
    if ln.count(" ") < 2 or "&" in ln or ln.startswith("|"):
        return False
    if len(ln) > 400:
        return True  # a long line or paragraph is prose whatever its start; no need to count
    words = len(_PROSE_RE.findall(ln))
    if words < 4:
        return False
    return not (_ITEM_RE.match(ln) and words < 8 and "\n" not in ln)


def _dup_fracs(items: list[str], repeats: Callable[[str], bool] | None = None) -> tuple[float, float]:
    """Gopher duplicate fractions: (duplicate items / items, chars in duplicates / chars).

    `repeats(item)`: whether a duplicate of this item counts (layout lines do not); asked once
    per distinct duplicated item, so the check costs nothing on the unique majority.
    """
    if not items:
        return 0.0, 0.0
    seen: set[str] = set()
    verdict: dict[str, bool] = {}
    n_dup = c_dup = 0
    for it in items:
        if it in seen:
            counts = verdict.get(it)
            if counts is None:
                counts = verdict[it] = repeats is None or repeats(it)
            if counts:
                n_dup += 1
                c_dup += len(it)
        else:
            seen.add(it)
    total = sum(len(x) for x in items) or 1
    return round(n_dup / len(items), 4), round(c_dup / total, 4)


def _longest_paragraph(reasoning: str, para_spans: Sequence[tuple[int, int]]) -> tuple[int, list[Any] | None]:
    """Words of the longest paragraph (CJK per character) and its span; the first one on ties."""
    longest, lspan = 0, None
    if _text.KERNEL is not None:
        for (a, b), w in zip(para_spans, _text.KERNEL.word_counts(reasoning, para_spans)):
            if w > longest:
                longest, lspan = w, ["reasoning", a, b]
        return longest, lspan
    # A Latin-only text needs only the Latin word count (what count_words does then).
    latin_only = not has_non_latin_letter(reasoning)
    classes = latin1_word_classes(reasoning) if latin_only else None
    for a, b in para_spans:
        seg = reasoning[a:b]
        # (No "spaces + 1" shortcut: "x/y-z" is three words without a space; it undercounted
        # 23 of the 4,570 real traces before the compiled count showed it.)
        if classes is not None:
            w = count_latin_words(classes, a, b)
        else:
            w = len(LATIN_WORD_RE.findall(seg)) if latin_only else count_words(seg)
        if w > longest:
            longest, lspan = w, ["reasoning", a, b]
    return longest, lspan


def _dup_fracs_of(reasoning: str, para_spans: Sequence[tuple[int, int]] | None) -> tuple[int, float, float]:
    """(items, duplicate share, duplicate char share) of the lines with 2+ spaces (para_spans
    None) or of the paragraphs; only repeats of prose lines count (`_is_prose_line`)."""
    if _text.KERNEL is None:
        if para_spans is None:
            items = [ln for ln in (x.strip() for x in reasoning.split("\n")) if ln.count(" ") >= 2]
        else:
            items = [reasoning[a:b].strip() for a, b in para_spans]
        return (len(items), *_dup_fracs(items, _is_prose_line))
    n, chars, dups = _text.KERNEL.line_dups(reasoning, para_spans, 2)
    if not n:
        return 0, 0.0, 0.0
    n_dup = c_dup = 0
    for _order, a, b, extra in dups:
        if _is_prose_line(reasoning[a:b]):
            n_dup += extra
            c_dup += extra * (b - a)
    return n, round(n_dup / n, 4), round(c_dup / (chars or 1), 4)


def _top_repeat(reasoning: str) -> tuple[str, int]:
    """The most repeated sentence of 5+ words, or opening (first 48 characters), and its count.

    Loops are sentences of 5+ words (not "x = 2"), repeated on their own lines or inside one
    paragraph, so count sentences rather than lines."""
    if _text.KERNEL is not None:
        count, a, b = _text.KERNEL.top_sentence(reasoning, 4, 60, 48)
        return reasoning[a:b], count
    # (str.replace passes run in C; a regex split with look-behind was the slowest step here.)
    by_sentence = reasoning.replace(". ", ".\n").replace("? ", "?\n").replace("! ", "!\n").replace("。", "。\n")
    long_lines = [x for x in (y.strip() for y in by_sentence.split("\n")) if x.count(" ") >= 4]
    top_line, top_count = ("", 0)
    if long_lines:
        c = Counter(long_lines)
        top_line, top_count = c.most_common(1)[0]
        heads = Counter(ln[:48] for ln in long_lines if len(ln) > 60)
        h, hc = heads.most_common(1)[0] if heads else ("", 0)
        if hc > top_count:
            top_line, top_count = h, hc
    return top_line, top_count


def _score_one(inp: FilterInput, max_words_for_ngrams: int) -> dict[str, Any]:
    reasoning, fixes = safe_text(inp.reasoning)
    answer, f2 = safe_text(inp.answer)
    if not reasoning and not answer:
        # Only a raw completion: take the think block if there is one.
        completion, _ = safe_text(inp.completion)
        sp = split_completion(completion, inp.think_format if inp.think_format in THINK_FORMATS else "auto")
        reasoning, answer = sp.reasoning, sp.answer
    s: dict[str, Any] = {
        "domain": inp.domain if isinstance(inp.domain, str) else None,
        "language": inp.language if isinstance(inp.language, str) else None,
        "bucket": inp.bucket if isinstance(inp.bucket, str) else None,
        "sanitized": sorted(set(fixes + f2)),
        "spans": {},
    }
    para_spans = paragraphs(reasoning)
    longest, lspan = _longest_paragraph(reasoning, para_spans)
    s["n_paragraphs"] = len(para_spans)
    s["longest_paragraph_words"] = longest
    if lspan:
        s["spans"]["longest_paragraph"] = lspan
    # Any ``` counts, not only at a line start: a CoT flattened into one paragraph keeps its code.
    fences = [m.start() for m in _FENCE_RE.finditer(reasoning)] if "```" in reasoning else []
    # Only blocks that hold code count: fenced column addition, long division or a 3×3 grid are
    # layout (numbers, operators, single letters), not code.
    n_code, first = 0, None
    for i in range(0, len(fences), 2):
        a = fences[i]
        b = fences[i + 1] + 3 if i + 1 < len(fences) else len(reasoning)
        body = reasoning[a + 3:b - 3 if i + 1 < len(fences) else b]
        nl = body.find("\n")
        body = body[nl + 1:] if nl >= 0 else body  # drop the info string ("python")
        if _CODE_WORD_RE.search(body):
            n_code += 1
            first = first or [a, b]
    s["code_blocks"] = n_code
    if first:
        s["spans"]["code_block"] = ["reasoning", *first]

    # Lines of at least three tokens: "\\[", "\\]", "---" and "$$" repeat in every math CoT and
    # are layout, not repetition (Gopher counted web-text lines, where such lines are rare).
    # Only repeats of prose count: "\\[", "\\]", "$$" and restated expressions ("x = 2 + 3") are
    # layout, and so are table/array rows ("1 & 0 \\\\", "| a | b |") and short enumeration items
    # ("- Eyes: 1 option"), which repeat in every careful solution (Gopher counted web-text lines).
    s["n_lines"], s["dup_line_frac"], s["dup_line_char_frac"] = _dup_fracs_of(reasoning, None)
    _, s["dup_para_frac"], s["dup_para_char_frac"] = _dup_fracs_of(reasoning, para_spans)
    # Repetition loop: the most repeated line, or opening (first 48 characters) among sentences of at
    # least 5 words — catches "Alternatively, perhaps I need to consider that …" loops whose
    # endings vary.
    top_line, top_count = _top_repeat(reasoning)
    s["top_line_repeats"] = top_count
    if top_count > 1:
        pos = reasoning.find(top_line)
        idx = reasoning.find(top_line, pos + 1)
        s["spans"]["repetition"] = ["reasoning", idx, idx + len(top_line)]
        s["top_line"] = top_line[:200]

    low = lowered(reasoning)
    # Whitespace words, as Gopher splits them (punctuation stays on the word), hashed.
    if _text.KERNEL is not None:
        n_words, total_chars, top, dup5 = _text.KERNEL.ngram_stats(low, max_words_for_ngrams)
        s.update(_fractions(total_chars, top, dup5))
    else:
        h, lens = split_hashed(low)
        n_words = len(h)
        s["_words"] = (h[:max_words_for_ngrams], lens[:max_words_for_ngrams])
    s["reasoning_words"] = n_words
    reflections = (_text.KERNEL.count_phrases(low, REFLECTION_PHRASES) if _text.KERNEL is not None
                   else sum(low.count(p) for p in REFLECTION_PHRASES))
    s["reflections"] = reflections
    s["reflections_per_kword"] = round(1000 * reflections / n_words, 2) if n_words else 0.0
    s["summary_words"] = count_words(mask_non_prose(answer))  # prose words: a lone \\boxed{} is no summary
    return s


def score(inputs: Sequence[FilterInput], max_words_for_ngrams: int = 200_000) -> list[dict[str, Any]]:
    scores = [_score_one(i, max_words_for_ngrams) for i in inputs]
    pending = [s for s in scores if "_words" in s]  # the numpy path: one batched pass
    for s, ng in zip(pending, _ngram_stats([s.pop("_words") for s in pending])):
        s.update(ng)
    return scores


def decide(s: Mapping[str, Any], t: ReadabilityThresholds) -> tuple[bool, str | None]:
    def over(key: str, limit: float | None) -> bool:
        return limit is not None and s.get(key, 0) > limit

    if over("longest_paragraph_words", t.max_paragraph_words):
        return False, "paragraph_too_long"
    if t.max_code_blocks is not None and s.get("domain") not in t.code_domains and s.get("code_blocks", 0) > t.max_code_blocks:
        return False, "code_block_in_non_code"
    if over("top_line_repeats", t.max_line_repeats):
        return False, "repetition_loop"
    if over("dup_line_frac", t.max_dup_line_frac) or over("dup_line_char_frac", t.max_dup_line_char_frac):
        return False, "duplicate_lines"
    if over("dup_para_frac", t.max_dup_para_frac) or over("dup_para_char_frac", t.max_dup_para_char_frac):
        return False, "duplicate_paragraphs"
    long_enough = t.min_words_for_ngram_checks is None or s.get("reasoning_words", 0) >= t.min_words_for_ngram_checks
    if long_enough and (over("top_2gram_frac", t.max_top_2gram_frac) or over("top_3gram_frac", t.max_top_3gram_frac)
                        or over("top_4gram_frac", t.max_top_4gram_frac)):
        return False, "top_ngram_repetition"
    if long_enough and over("dup_5gram_frac", t.max_dup_5gram_frac):
        return False, "duplicate_ngrams"
    if over("reflections_per_kword", t.max_reflections_per_kword):
        return False, "reflection_loop"
    if t.min_summary_words and s.get("summary_words", 0) < t.min_summary_words:
        return False, "missing_summary"
    return True, None


SPEC = register_filter(FilterSpec(
    "readability", score, decide, ReadabilityThresholds,
    span_for_reason={
        "paragraph_too_long": "longest_paragraph", "code_block_in_non_code": "code_block",
        "repetition_loop": "repetition", "duplicate_lines": "repetition",
    },
))
