"""The compiled word loops (filters/_textkernel.c) against the Python definitions they replace.

Each kernel function must answer exactly what the Python path beside its call answers: on every
real trace in ../shared/data (whole filter scores compared, not just verdicts) and on random
text built from the characters each loop treats specially (apostrophes, `\\begin{…}`, `。`,
lone surrogates, `İ`, …). The Python path runs with `filters.text.KERNEL` set to None, as in a
source tree nobody compiled (see `filters.text._load_kernel`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from filters import language_mixing as lm
from filters import readability as rd
from filters import text as t
from filters.base import FilterInput, run_filters


def test_the_kernel_is_built_where_the_project_is_installed():
    # `make setup` (pip install -e .) compiles it. Not a skip: a tree without it runs the filters
    # about 3x slower, which is a broken install, not an option.
    assert t.KERNEL is not None, "filters/_textkernel.c is not compiled: run `make setup` (pip install -e .)"


@contextmanager
def pure_python() -> Iterator[None]:
    kernel = t.KERNEL
    t.KERNEL = None
    t._PARAGRAPHS.items.clear()
    t._PARAGRAPHS.chars = 0
    try:
        yield
    finally:
        t.KERNEL = kernel
        t._PARAGRAPHS.items.clear()
        t._PARAGRAPHS.chars = 0


def both(fn: Callable[[], Any]) -> tuple[Any, Any]:
    t._PARAGRAPHS.items.clear()
    t._PARAGRAPHS.chars = 0
    fast = fn()
    with pure_python():
        slow = fn()
    return fast, slow


@pytest.fixture(scope="module")
def real_rows(shared_data) -> list[dict[str, Any]]:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from filter_cases import load_all

    rows = [dict(r) for r in load_all(shared_data).values()]
    # Chinese medical CoT (HuatuoGPT-o1): CJK text through every script path.
    for i, e in enumerate(json.loads((shared_data / "traces/huatuo_o1_medical_cot_demo200.json").read_text("utf-8"))):
        rows.append({"reasoning": e["Complex_CoT"], "answer": e["Response"], "domain": "medical",
                     "completion": f"<think>{e['Complex_CoT']}</think>{e['Response']}",
                     "prompt": e["Open-ended Verifiable Question"] or e["Question"], "key": f"huatuo:{i}"})
    assert len(rows) > 1000
    return rows


def test_filter_scores_on_every_real_trace_are_the_same(real_rows):
    names = ["format", "readability", "language_mixing"]

    def run() -> list[Any]:
        out = []
        for i in range(0, len(real_rows), 200):
            out.extend(run_filters(real_rows[i:i + 200], names))
        return out

    fast, slow = both(run)
    assert len(fast) == len(slow) == len(real_rows)
    differ = [(r["key"], a, b) for r, a, b in zip(real_rows, fast, slow) if a != b]
    assert not differ, differ[:2]
    assert any(not all(v.passed for v in res.values()) for res in fast)  # real rejections among them


def test_low_level_answers_on_real_text(real_rows):
    for r in real_rows[::3]:
        for text in (r.get("reasoning") or "", r.get("answer") or "", r.get("completion") or ""):
            low = text.lower()
            spans = t.paragraphs(text)
            fast, slow = both(lambda text=text, low=low: (
                t.paragraphs(text), t.mask_non_prose(text), t.has_non_latin_letter(text), t.has_cjk_char(text),
                t.has_non_latin_math_letter(text), rd._dup_fracs_of(text, None), rd._dup_fracs_of(text, t.paragraphs(text)),
                rd._top_repeat(text), lm.prose_counts(low, t.paragraphs(text), lm.STOPWORDS["en"]),
                lm._text_vote(text, 0, len(text)),
            ))
            assert fast == slow, r["key"]
            n_words, total, top, dup5 = t.KERNEL.ngram_stats(low, 200_000)
            assert n_words == len(low.split())
            assert rd._fractions(total, top, dup5) == rd._ngram_stats([rd.split_hashed(low)])[0], r["key"]
            assert t.KERNEL.word_counts(text, spans) == [sum(1 for _ in t.TOKEN_RE.finditer(text[a:b])) for a, b in spans]


# Characters each loop treats specially: whitespace of all kinds, apostrophes, LaTeX and markdown
# openers, sentence ends, Latin-1 letters and symbols, CJK and its punctuation, Greek, digits of
# other scripts, superscripts, letterlike symbols, a dotted capital I (lower-cases to 2 chars).
ALPHABET = (list(" \n\t\x0b\x0c\r\x1c\x85\xa0\u2028\u3000") + list("aAbzZ'’`$\\{}[]()*_.,?!:/-0123456789")
            + list("éÀßµªº×÷²¹¼ÿİĳǅ") + list("生的。，・アカ한글") + list("πθΩ٣٤ℝ𝐀ˣ⁰₂") + ["\ud800", "\udfff"]
            + ["\\begin{", "\\end{", "align}", "align*}", "\\[", "\\]", "\\(", "\\)", "$$", "```", "http://", "https://x",
               "the ", "and ", "wait", "hmm", "let me check", "等等", "Der ", "und ", ". ", "? ", "\n\n", "\n \t\n",
               "It's ", "don't", "a'b", "''", "x" * 60 + " "])


def random_texts(n: int, seed: int, max_len: int = 40) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(n):
        yield "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, max_len)))


def test_mask_flags_and_paragraphs_on_random_text():
    for s in random_texts(40_000, 1):
        assert t.KERNEL.mask_non_prose(s) == t._MASK_RE.sub(lambda m: " " * (m.end() - m.start()), s), repr(s)
        flags = t.KERNEL.char_flags(s)
        assert bool(flags & 1) == (t.NON_LATIN_LETTER_RE.search(s) is not None), repr(s)
        assert bool(flags & 2) == (t.LATIN_MATH_ONLY_RE.search(s) is not None), repr(s)
        assert bool(flags & 4) == (t.CJK_CHAR_RE.search(s) is not None), repr(s)
        assert t.KERNEL.has_surrogate(s) == any("\ud800" <= c <= "\udfff" for c in s), repr(s)
        with pure_python():
            spans = list(t._paragraphs(s))
        assert t.KERNEL.paragraph_spans(s) == spans, repr(s)


def test_masked_text_is_a_canonical_string():
    # CPython compares strings by width first: a masked "é$x$" must be the 1-byte "é   ".
    masked = t.KERNEL.mask_non_prose("\u03c0 is $\\pi$ and 生 is $x$")
    assert masked == "\u03c0 is" + " " * 7 + "and 生 is    "
    assert t.KERNEL.mask_non_prose("only math $\u03c0$") == "only math    "
    assert t.KERNEL.mask_non_prose("only math $\u03c0$").isascii()


def test_word_loops_on_random_text():
    rng = random.Random(5)
    stop = lm.STOPWORDS["en"]
    tables = [lm._stop_table(sw)[0] for sw in lm.STOPWORDS.values()]
    for s in random_texts(30_000, 2):
        a = rng.randint(0, len(s))
        b = rng.randint(a, len(s))
        assert t.KERNEL.word_counts(s, [(a, b)]) == [sum(1 for _ in t.TOKEN_RE.finditer(s[a:b]))], repr((s, a, b))
        low = s.lower()
        assert lm.prose_counts(low, [(a, b)], stop) == lm._prose_counts_py(low, [(a, b)], stop), repr((s, a, b))
        words = [w.lower() for w in t.WORD2_RE.findall(s, a, b)]
        n, hits = t.KERNEL.stopword_hits(s, a, b, tables)
        assert (n, hits) == (len(words), [sum(map(sw.__contains__, words)) for sw in lm.STOPWORDS.values()]), repr((s, a, b))
        assert t.KERNEL.count_phrases(low, rd.REFLECTION_PHRASES) == sum(low.count(p) for p in rd.REFLECTION_PHRASES)


def test_line_and_sentence_repeats_on_random_text():
    # Few distinct pieces, so lines and sentences repeat.
    pieces = ["a b c", "x y z w v", "Wait, let me check this again now.", "the end", "。", ". ", "\n", "  ", "\t",
              "Alternatively, perhaps I need to consider that the answer is", " 5 ", " 7 and more words here"]
    rng = random.Random(3)
    for _ in range(20_000):
        s = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        spans = t.paragraphs(s)
        fast = (rd._dup_fracs_of(s, None), rd._dup_fracs_of(s, spans), rd._top_repeat(s))
        with pure_python():
            slow = (rd._dup_fracs_of(s, None), rd._dup_fracs_of(s, spans), rd._top_repeat(s))
        assert fast == slow, repr(s)


def test_ngram_figures_on_random_word_lists():
    rng = random.Random(4)
    for _ in range(3_000):
        words = [rng.choice(["a", "bb", "ccc", "dd", "e", "ffff", "é", "生"]) for _ in range(rng.randint(0, 80))]
        low = " ".join(words)
        n_words, total, top, dup5 = t.KERNEL.ngram_stats(low, 200_000)
        assert n_words == len(words)
        assert rd._fractions(total, top, dup5) == rd._ngram_stats([rd.split_hashed(low)])[0], words
        # max_words caps the n-gram figures, not the word count
        n_cap, total_cap, *_ = t.KERNEL.ngram_stats(low, 10)
        assert (n_cap, total_cap) == (len(words), sum(map(len, words[:10])))


def test_kernel_rejects_bad_arguments_with_python_errors():
    with pytest.raises(TypeError):
        t.KERNEL.paragraph_spans(b"bytes")
    with pytest.raises(TypeError):
        t.KERNEL.line_dups("text", [(0, "x")], 2)
    with pytest.raises(ValueError):
        t.KERNEL.count_phrases("text", ("",))
    # spans outside the text are clipped, never read out of bounds
    assert t.KERNEL.word_counts("ab cd", [(-5, 99), (4, 2)]) == [2, 0]
    assert lm.prose_counts("ab cd", [(3, 100)], None) == [(1, 0)]


def test_filter_inputs_with_odd_types_still_score():
    rows = [FilterInput(reasoning=None, answer=b"\xff bytes", completion=None),
            FilterInput(reasoning="\ud800 lone surrogate. " * 30, answer="ok \\boxed{1}", completion=None)]
    fast, slow = both(lambda: (rd.score(rows), lm.score(rows)))
    assert fast == slow


def test_mask_of_unclosed_openers_matches_the_regex():
    # Openers without their closer: each one makes the regex search to the end of the text; the
    # kernel remembers which closers are gone (linear), and must still mask exactly the same.
    ref = lambda s: t._MASK_RE.sub(lambda m: " " * (m.end() - m.start()), s)  # noqa: E731
    hostile = ["\\[ a " * 3000, "$$ x " + "\\( y " * 3000, "\\begin{x} " * 3000,
               "".join(f"\\begin{{n{i}}} \\end{{m{i}}} " for i in range(1500)),
               "\\begin{a} \\end{b} \\begin{b} x \\end{a} \\end{b} " * 500, "```py\n" + "` $ \\[ " * 2000]
    for s in hostile:
        assert t.KERNEL.mask_non_prose(s) == ref(s), s[:40]


def test_scripts_of_every_code_point():
    # Each character alone and in pairs: which TOKEN_RE group takes it, and the script and
    # letter facts, for the whole Basic Multilingual Plane and the CJK extension planes.
    chars = [chr(c) for c in range(0x20, 0x30000) if not 0xD800 <= c <= 0xDFFF]
    rng = random.Random(6)
    for i in range(0, len(chars), 64):
        s = "".join(chars[i:i + 64])
        assert t.KERNEL.word_counts(s, [(0, len(s))]) == [sum(1 for _ in t.TOKEN_RE.finditer(s))], hex(ord(s[0]))
        for c in s:
            flags = t.KERNEL.char_flags(c)
            assert bool(flags & 1) == (t.NON_LATIN_LETTER_RE.search(c) is not None), hex(ord(c))
            assert bool(flags & 2) == (t.LATIN_MATH_ONLY_RE.search(c) is not None), hex(ord(c))
            assert bool(flags & 4) == (t.CJK_CHAR_RE.search(c) is not None), hex(ord(c))
        pair = "".join(rng.choice(chars) for _ in range(64))
        assert t.KERNEL.word_counts(pair, [(0, len(pair))]) == [sum(1 for _ in t.TOKEN_RE.finditer(pair))], pair
