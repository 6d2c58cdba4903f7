"""Text helpers shared by the filters: safe coercion, masking of math/code, script-aware words.

Masking replaces LaTeX, code and numbers with spaces of the same length instead of deleting
them, so every offset computed on the masked text is an offset into the original text (the
`dataengine sample` command highlights spans with them).

>>> t = "So $x^2$ is 4, 生长周期 too."
>>> masked = mask_non_prose(t)
>>> len(masked) == len(t) and "x^2" not in masked
True
>>> count_words("The 生长 cycle")   # CJK counted per character
4
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Any


def _load_kernel() -> Any:
    """filters/_textkernel.c, compiled by `pip install -e .` (setup.py); None in a source tree
    nobody built, or with DATAENGINE_PURE_PYTHON_FILTERS=1 (to compare the two: every kernel
    function has its Python definition beside its call, with the same answers)."""
    if os.environ.get("DATAENGINE_PURE_PYTHON_FILTERS", "") not in ("", "0"):
        return None
    try:
        from filters import _textkernel
    except ImportError:
        return None
    return _textkernel


KERNEL = _load_kernel()

# Unicode ranges per script. Han and kana are split so Japanese can be told from Chinese.
HAN = "\u3005-\u3007\u3021-\u3029\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
KANA = "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"
HANGUL = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
CYRILLIC = "\u0400-\u052f"
GREEK = "\u0370-\u03ff\u1f00-\u1fff"
ARABIC = "\u0610-\u061a\u0620-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff"
HEBREW = "\u0590-\u05ff"
DEVANAGARI = "\u0900-\u0963\u0966-\u097f"  # not the dandas ।॥, which Bengali uses too
BENGALI = "\u0980-\u09ff"
TAMIL = "\u0b80-\u0bff"
TELUGU = "\u0c00-\u0c7f"
THAI = "\u0e00-\u0e7f"

# Word tokens, one named group per script; combining marks stay inside their word (Indic
# scripts write vowels as marks, so a word is a run of the script's block).
TOKEN_RE = re.compile(
    rf"(?P<han>[{HAN}])|(?P<kana>[{KANA}]+)|(?P<hangul>[{HANGUL}]+)"
    rf"|(?P<latin>[{LATIN}]+(?:['’][{LATIN}]+)*)|(?P<cyrillic>[{CYRILLIC}]+)|(?P<greek>[{GREEK}]+)"
    rf"|(?P<arabic>[{ARABIC}]+)|(?P<hebrew>[{HEBREW}]+)|(?P<devanagari>[{DEVANAGARI}]+)"
    rf"|(?P<bengali>[{BENGALI}]+)|(?P<tamil>[{TAMIL}]+)|(?P<telugu>[{TELUGU}]+)|(?P<thai>[{THAI}]+)"
    r"|(?P<other>[^\W\d_]+)"
)
# Runs of one script: tokens of one script with only separators between them (characters that
# start no token: not a letter, not in any script's block). One match per run instead of one per
# word or CJK character, so `language_mixing._regions` loops over script changes, not words.
# Same spans as merging consecutive TOKEN_RE tokens of a script (tests/test_filters_fast_paths.py).
_ALL_SCRIPTS = HAN + KANA + HANGUL + LATIN + CYRILLIC + GREEK + ARABIC + HEBREW + DEVANAGARI + BENGALI + TAMIL + TELUGU + THAI
_SEP = rf"(?:(?![{_ALL_SCRIPTS}])[\W\d_])*"
SCRIPT_TOKEN = {
    "cjk": f"[{HAN}{KANA}]", "hangul": f"[{HANGUL}]+", "latin": rf"[{LATIN}]+(?:['’][{LATIN}]+)*",
    "cyrillic": f"[{CYRILLIC}]+", "greek": f"[{GREEK}]+", "arabic": f"[{ARABIC}]+", "hebrew": f"[{HEBREW}]+",
    "devanagari": f"[{DEVANAGARI}]+", "bengali": f"[{BENGALI}]+", "tamil": f"[{TAMIL}]+", "telugu": f"[{TELUGU}]+",
    "thai": f"[{THAI}]+",
}
SCRIPT_TOKEN_RE = {k: re.compile(v) for k, v in SCRIPT_TOKEN.items()}
SCRIPT_RUN_RE = re.compile(
    "|".join(f"(?P<{k}>{v}(?:{_SEP}{v})*)" for k, v in SCRIPT_TOKEN.items()) + r"|(?P<other>[^\W\d_]+)"
)
KANA_RE = re.compile(f"[{KANA}]")
# Any letter of a script other than Latin: when absent, the fast Latin-only path applies.
NON_LATIN_LETTER_RE = re.compile(r"[^\W\d_A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
LATIN_WORD_RE = re.compile(rf"[{LATIN}]+(?:['’][{LATIN}]+)*")
# Latin words of two letters or more: single letters are variables (x, a, b) more often than
# words, and count for nothing.
WORD2_RE = re.compile(rf"[{LATIN}](?:[{LATIN}]|['’](?=[{LATIN}]))+")
# Fast-path words: Latin runs of 2+ letters that do not continue a LaTeX command (\\frac) or
# another word; a plain character class, several times faster than WORD2_RE on long text.
PROSE_WORD_RE = re.compile(rf"(?<![\\{LATIN}])[{LATIN}]{{2,}}")
# A letter of a script other than Latin, ignoring Greek (π, θ: math) and letter-like symbols
# (², ℝ, ˣ): when absent, an English/Spanish/… text takes the fast path without masking.
LATIN_MATH_ONLY_RE = re.compile(
    r"[^\W\d_A-Za-z\u00c0-\u024f\u1e00-\u1eff\u0370-\u03ff\u1f00-\u1fff\u00b2\u00b3\u00b9\u00bc-\u00be"
    r"\u02b0-\u02ff\u2070-\u209f\u2100-\u218f\U0001d400-\U0001d7ff]"
)
CJK_CHAR_RE = re.compile(rf"[{HAN}{KANA}]")
FENCE_LINE_RE = re.compile(r"^[ \t]*```", re.MULTILINE)

# What is not prose: fenced code, inline code, display and inline LaTeX, LaTeX commands, URLs,
# numbers. One alternation, one pass.
_MASK_RE = re.compile(
    r"```.*?(?:```|\Z)"  # fenced code (an unclosed fence runs to the end)
    r"|`[^`\n]*`"
    r"|\$\$.*?\$\$|\\\[.*?\\\]|\\\(.*?\\\)"
    r"|\$[^$\n]{0,400}?\$"
    r"|\\begin\{(\w+\*?)\}.*?\\end\{\1\}"
    r"|\\[A-Za-z]+(?:\{[^{}\n]{0,80}\})?"
    r"|https?://\S+"
    # superscripts/subscripts, number forms, letterlike symbols (ℒ, ℝ), modifier letters (ˣ),
    # math alphanumerics: letters to Python's regex, symbols to a reader.
    "|[\u00b2\u00b3\u00b9\u00bc-\u00be\u02b0-\u02ff\u2070-\u209f\u2100-\u218f\U0001d400-\U0001d7ff]+"
    r"|\d+(?:[.,]\d+)*",
    re.DOTALL,
)
# Every alternative above starts with one of these characters; a lookahead on them lets the
# regex engine skip plain prose ~1.5x faster than trying each alternative at every position.
_MASK_RE = re.compile(
    "(?=[`$\\\\h0-9\u00b2\u00b3\u00b9\u00bc-\u00be\u02b0-\u02ff\u2070-\u209f\u2100-\u218f\U0001d400-\U0001d7ff])(?:"
    + _MASK_RE.pattern + ")",
    re.DOTALL,
)


def _latin1_matches(pattern: re.Pattern[str]) -> tuple[str, ...]:
    return tuple(c for c in map(chr, range(128, 256)) if pattern.match(c))


# The characters of U+0080-U+00FF each pattern matches (ª, µ, º, ², … ), found by the regexes
# themselves: for Latin-1 text (most R1 traces: ASCII plus ×, ², °), looking for these few
# characters with `in` (memchr speed) answers the same as a regex pass over every character.
_LATIN1_NON_LATIN = _latin1_matches(NON_LATIN_LETTER_RE)
_LATIN1_NON_LATIN_MATH = _latin1_matches(LATIN_MATH_ONLY_RE)


def _is_latin1(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _has(text: str, flag: int, latin1_chars: tuple[str, ...], pattern: re.Pattern[str]) -> bool:
    """`pattern.search(text) is not None` for one of the character-class patterns below: ASCII
    text has none of them; the kernel's `char_flags` bit `flag` answers in one pass; Latin-1 text
    holds one only if it holds one of `latin1_chars` (an `in` per character, memchr speed)."""
    if text.isascii():
        return False
    if KERNEL is not None:
        return bool(KERNEL.char_flags(text) & flag)
    if _is_latin1(text):
        return any(c in text for c in latin1_chars)
    return pattern.search(text) is not None


def has_non_latin_letter(text: str) -> bool:
    """`NON_LATIN_LETTER_RE.search(text) is not None`."""
    return _has(text, 1, _LATIN1_NON_LATIN, NON_LATIN_LETTER_RE)


def has_non_latin_math_letter(text: str) -> bool:
    """`LATIN_MATH_ONLY_RE.search(text) is not None`."""
    return _has(text, 2, _LATIN1_NON_LATIN_MATH, LATIN_MATH_ONLY_RE)


def has_cjk_char(text: str) -> bool:
    """`CJK_CHAR_RE.search(text) is not None` (Latin-1 text has none)."""
    return _has(text, 4, (), CJK_CHAR_RE)


# Latin-1 bytes → b"a" for a letter of LATIN, b"'" for the apostrophe, b" " for anything else.
_LATIN1_WORD_CLASS = bytes(
    97 if re.fullmatch(f"[{LATIN}]", chr(i)) else 39 if i == 39 else 32 for i in range(256)
)


def latin1_word_classes(text: str) -> bytes | None:
    """For Latin-1 text, its characters mapped to word classes (see `count_latin_words`); else None."""
    try:
        return text.encode("latin-1").translate(_LATIN1_WORD_CLASS)
    except UnicodeEncodeError:
        return None


def count_latin_words(classes: bytes, start: int, end: int) -> int:
    """`len(LATIN_WORD_RE.findall(text[start:end]))` from `latin1_word_classes(text)`, by counting
    word starts with bytes.count (memchr speed) instead of a regex pass.

    A match of LATIN_WORD_RE (letters, joined by single apostrophes) starts at a letter that
    follows a non-letter non-apostrophe (" a"), or an apostrophe that itself follows no letter
    (" 'a", "''a"), or the start of the slice ("a", "'a"). The three patterns cannot overlap
    themselves or each other, so bytes.count counts each start once.
    """
    t = classes
    head = t[start:min(start + 2, end)]
    return (t.count(b" a", start, end) + t.count(b" 'a", start, end) + t.count(b"''a", start, end)
            + (head[:1] == b"a") + (head == b"'a"))


def safe_text(value: Any) -> tuple[str, list[str]]:
    """Any input → a clean `str` and what had to be fixed (never raises).

    None → "", non-str → str(); NUL bytes become spaces; lone surrogates (which cannot be
    encoded and crash C extensions) become U+FFFD.
    """
    fixes: list[str] = []
    if value is None:
        return "", fixes
    if not isinstance(value, str):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        else:
            value = str(value)
        fixes.append("not_a_string")
    if "\x00" in value:
        value = value.replace("\x00", " ")
        fixes.append("nul_bytes")
    if not value.isascii() and _has_surrogate(value):
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        # surrogatepass keeps a valid pair's halves apart; anything left unpaired becomes U+FFFD.
        value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
        fixes.append("lone_surrogates")
    return value, fixes


def _has_surrogate(text: str) -> bool:
    """Whether `text` holds a lone surrogate (cannot be encoded as UTF-8)."""
    if KERNEL is not None:
        return KERNEL.has_surrogate(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def mask_non_prose(text: str) -> str:
    """`text` with code, LaTeX, URLs and numbers replaced by spaces (same length, same offsets)."""
    if KERNEL is not None:
        return KERNEL.mask_non_prose(text)
    return _MASK_RE.sub(lambda m: " " * (m.end() - m.start()), text)


def count_words(text: str) -> int:
    """Words, script-aware: CJK per character, other scripts per whitespace/punctuation word."""
    if KERNEL is not None:
        return KERNEL.word_counts(text, ((0, len(text)),))[0]
    if not has_non_latin_letter(text):
        return len(LATIN_WORD_RE.findall(text))
    return sum(1 for _ in TOKEN_RE.finditer(text))


def paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph: blocks separated by blank lines."""
    got = _PARAGRAPHS.get(text)
    if got is None:
        got = _PARAGRAPHS.put(text, _paragraphs(text))
    return list(got)


def _paragraphs(text: str) -> tuple[tuple[int, int], ...]:
    if KERNEL is not None:
        return tuple(KERNEL.paragraph_spans(text))
    out = []
    pos = 0
    for m in _PARA_BREAK_RE.finditer(text):
        if m.start() > pos:
            out.append((pos, m.start()))
        pos = m.end()
    if pos < len(text) and text[pos:].strip():
        out.append((pos, len(text)))
    return tuple(out)


_PARA_BREAK_RE = re.compile(r"\n[ \t]*\n\s*")


class _TextCache:
    """The last results computed per text, up to `max_chars` characters of texts in all (bounded
    memory whatever the trace lengths). Readability and language mixing both split the same
    reasoning into paragraphs and lower-case it, one filter after the other over a batch: the
    second gets the first's pass from here; a miss only costs the pass again."""

    def __init__(self, max_chars: int):
        self.max_chars = max_chars
        self.chars = 0
        self.items: OrderedDict[str, Any] = OrderedDict()

    def get(self, text: str) -> Any:
        return self.items.get(text)

    def put(self, text: str, value: Any) -> Any:
        if len(text) <= self.max_chars // 4 and text not in self.items:
            self.items[text] = value
            self.chars += len(text)
            while self.chars > self.max_chars:
                old, _ = self.items.popitem(last=False)
                self.chars -= len(old)
        return value


_PARAGRAPHS = _TextCache(16_000_000)
_LOWERED = _TextCache(16_000_000)


def lowered(text: str) -> str:
    """`text.lower()`, shared between the filters like `paragraphs`."""
    got = _LOWERED.get(text)
    return got if got is not None else _LOWERED.put(text, text.lower())


_SENT_RE = re.compile(r"[^.!?。！？\n]+(?:[.!?。！？]+|\n|$)")


def sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each sentence or line inside text[start:end]."""
    return [(m.start(), m.end()) for m in _SENT_RE.finditer(text, start, end) if m.group().strip()]
