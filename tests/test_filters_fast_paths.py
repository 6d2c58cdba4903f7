"""The filters' fast paths give what their definitions give.

`language_mixing._regions` finds script runs with one regex match per run; these are the spans,
word counts and kana flags of merging consecutive TOKEN_RE tokens one by one (the definition), on
real mixed-script text and on random strings of the characters where the two could part:
separators inside script blocks (・, Arabic-Indic digits, Greek ;), letters of no listed script
(µ, ª), apostrophes, digits, superscripts. Likewise the byte-level Latin word count, the script
checks on Latin-1 text and the numpy word split of readability."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from filters.language_mixing import _regions, _script_of
from filters.text import NON_LATIN_LETTER_RE, TOKEN_RE, mask_non_prose


def _regions_by_token(masked: str) -> list[tuple[str, int, int, int, bool]]:
    """The definition: one TOKEN_RE token at a time, consecutive tokens of a script merged."""
    if not NON_LATIN_LETTER_RE.search(masked):
        return [("latin", 0, len(masked), -1, False)]
    out: list[tuple[str, int, int, int, bool]] = []
    cur: list[Any] | None = None
    for m in TOKEN_RE.finditer(masked):
        g = m.lastgroup or "other"
        script = _script_of(g)
        words = (m.end() - m.start()) if g == "kana" else 1
        if cur is not None and cur[0] == script:
            cur[2] = m.end()
            cur[3] += words
            cur[4] = cur[4] or g == "kana"
        else:
            if cur is not None:
                out.append(tuple(cur))  # type: ignore[arg-type]
            cur = [script, m.start(), m.end(), words, g == "kana"]
    if cur is not None:
        out.append(tuple(cur))  # type: ignore[arg-type]
    return out


ALPHABET = ("ab", "Zé", "x", "'", "’", " ", "\n", "1", "_", ",", "生长", "期", "ア", "・", "ー", "々", "〇", "한국",
            "привет", "\u0483", "αβ", ";", "\u037e", "مرحبا", "١٢", "שלום", "नमस्ते", "০", "বাংলা", "தமிழ்", "తెలుగు",
            "ไทย", "๑", "µ", "ª", "²", "ℝ", "Ω", "ß", "Ա", "\u3000", "！", "。", "０")


def test_runs_match_token_by_token_on_random_mixed_scripts():
    rng = random.Random(15)
    for _ in range(20_000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 14)))
        assert _regions(text) == _regions_by_token(text), repr(text)


def test_runs_match_token_by_token_on_real_mixed_text(shared_data: Path):
    texts = []
    for name in ("sft/sharegpt_zh_1K_medicalgpt.jsonl", "sft/medical_sft_1K_medicalgpt.jsonl"):
        for line in (shared_data / name).read_text("utf-8").splitlines()[:300]:
            texts += [c["value"] for c in json.loads(line)["conversations"]]
    texts += [e["output"] for e in json.loads((shared_data / "sft/alpaca_zh_demo_llamafactory.json").read_text("utf-8"))]
    mixed = 0
    for t in texts:
        masked = mask_non_prose(t)
        got = _regions(masked)
        assert got == _regions_by_token(masked), t[:200]
        mixed += len({r[0] for r in got}) > 1
    assert mixed > 50  # the sets do mix scripts (Latin terms in Chinese answers)


def test_latin_word_count_by_byte_classes_matches_the_regex():
    from filters.text import LATIN_WORD_RE, count_latin_words, latin1_word_classes

    rng = random.Random(1)
    chars = [chr(i) for i in range(256)] + ["ab", "'", "''", "a'b"] * 20
    for _ in range(30_000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 16)))
        classes = latin1_word_classes(text)
        a = rng.randint(0, len(text))
        b = rng.randint(a, len(text))
        assert count_latin_words(classes, a, b) == len(LATIN_WORD_RE.findall(text[a:b])), (text, a, b)
    assert latin1_word_classes("π and ’") is None  # not Latin-1: the caller uses the regex


def test_script_checks_match_their_regexes():
    from filters import text as t

    rng = random.Random(2)
    chars = [chr(i) for i in range(256)] + ["π", "生", "・", "ア", "’", "ℝ"]
    for _ in range(50_000):
        s = "".join(rng.choice(chars) for _ in range(rng.randint(0, 8)))
        assert t.has_non_latin_letter(s) == (t.NON_LATIN_LETTER_RE.search(s) is not None), s
        assert t.has_non_latin_math_letter(s) == (t.LATIN_MATH_ONLY_RE.search(s) is not None), s
        assert t.has_cjk_char(s) == (t.CJK_CHAR_RE.search(s) is not None), s


def test_numpy_word_split_matches_str_split():
    from filters.readability import split_hashed

    rng = random.Random(3)
    chars = [" ", "\n", "\t", "\x1c", "\x85", "\xa0", "\x0b", "a", "b", "é", "×", "µ", "\x00", "ab", "π", "’"]
    for _ in range(30_000):
        s = "".join(rng.choice(chars) for _ in range(rng.randint(0, 12)))
        hashes, lens = split_hashed(s)
        words = s.split()
        assert list(lens) == [len(w) for w in words], repr(s)
        seen: dict[str, int] = {}
        for w, h in zip(words, hashes):
            assert seen.setdefault(w, int(h)) == int(h), repr(s)  # a word has one hash
        assert len(set(seen.values())) == len(seen), repr(s)  # different words, different hashes
