"""The one final-answer extractor, shared by the format filter and the math verifier.

`locate_final_answer(answer_text)` finds the answer a reader would take as final, in the answer
part (after the think block; `filters.split`):

1. the last `\\boxed{}` cluster — boxes close together that list parts of one answer stay a set
   (`\\boxed{2}, \\boxed{3}`), but a correction between them ("but", "wait", "actually",
   "checking again") makes the last box the answer;
2. a "final answer is …" / "the answers are: <list>" phrasing, an "Answer:" label line
   (`**Answer:** Baldur gets **55 liters**`), or a formula followed by "This is the final
   answer", when it comes after the last box;
3. the last bold span holding a number or formula (`**Total: 42**`).

Numbers written as words in the located answer or the last sentence ("is twelve") become digits
in `snippet`, so a grader never falls back to an earlier number. The format filter's
`missing_final_answer` reasons say which of these a trace lacks.

>>> locate_final_answer("At first I thought \\\\boxed{3}, but checking again the count is \\\\boxed{5}").answer
'5'
>>> locate_final_answer("So \\\\boxed{2} and \\\\boxed{3}.").answer
'2, 3'
>>> f = locate_final_answer("**Answer:** Baldur gets **55 liters**")
>>> (f.answer, f.method)
('55 liters', 'answer_label')
>>> locate_final_answer("Therefore the answer is twelve.").snippet
'the answer is 12'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*")
_BRACE_RE = re.compile(r"(?<!\\)[{}]")
# A degenerate answer can hold hundreds of boxes; the final answer is among the last ones.
MAX_BOXES = 64
# Boxes separated by at most this much text ("\quad \text{and} \quad") form one answer: a model
# that boxes each element of a set or each part of a tuple.
BOX_CLUSTER_GAP = 80
# Words between two boxes that retract the first one.
_CORRECTION_RE = re.compile(
    r"\b(?:but|wait|actually|however|instead|no|oops|correction|mistake|wrong|re-?check(?:ing)?|"
    r"checking\s+again|on\s+second\s+thought|rather|not)\b",
    re.IGNORECASE,
)
FINAL_PHRASE_RE = re.compile(
    r"\b(?:final\s+(?:answer|result)s?|the\s+(?:final\s+)?answers?)\s*(?:is\b|are\b|:|=)[ \t]*:?[ \t]*", re.IGNORECASE)
# "… = 2 \] This is the final answer.": the statement points back at the formula before it.
_POINTS_BACK_RE = re.compile(r"\b(?:this|that|which)\s+is\s+(?:the|our)\s+final\s+(?:answer|result)\b", re.IGNORECASE)
# "Answer:" / "**Final Answer:**" / "Answer: **42**" at the start of a line.
_LABEL_RE = re.compile(
    r"(?m)^[ \t>#*_-]*(?:\d+\.\s*)?(?:\*\*|__)?\s*(?:final\s+)?(?:answer|result)s?\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?[ \t]*(?=\S)"
    , re.IGNORECASE)
_FINAL_LINE_LABEL_RE = re.compile(r"^\s*(?:\*\*|__)[^*\n]{1,60}[:：=]\s*(?:\*\*|__)\s*(.{1,80})$")
_BOLD_RE = re.compile(r"\*\*([^*\n]{1,200}?)\*\*")
FORMULAS_RE = re.compile(
    r"\$\$(?P<dd>.+?)\$\$|\\\[(?P<br>.+?)\\\]|\\\((?P<pa>.+?)\\\)|(?<![\\$])\$(?P<d>[^$\n]+?)\$",
    re.DOTALL,
)

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
NUMBER_WORDS = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_NUMWORD_RE = re.compile(
    r"\b(?P<tens>" + "|".join(_TENS) + r")(?:[- ](?P<unit>" + "|".join(_UNITS[1:10]) + r"))?\b"
    r"|\b(?P<word>" + "|".join(_UNITS) + r")(?P<hundred>\s+hundred)?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    answer: str  # the answer as written (boxes of a set joined by ", ")
    snippet: str  # the text a grader should parse (number words as digits)
    start: int  # span in the answer text, for `sample`
    end: int
    method: str  # boxed | final_answer_phrase | answer_label | bold


def balanced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at `text[start] == '{'`, and the index after it."""
    depth = 0
    for m in _BRACE_RE.finditer(text, start):  # jumps from brace to brace (not char by char)
        if m.group() == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return text[start + 1 : m.start()], m.end()
    return None


def boxes(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every complete `\\boxed{…}` / `\\boxed x` in `text`."""
    out = []
    for m in list(BOXED_RE.finditer(text))[-MAX_BOXES:]:
        j = m.end()
        if j < len(text) and text[j] == "{":
            got = balanced(text, j)
            if got is not None and got[0].strip():
                out.append((m.start(), got[1], got[0].strip()))
        else:
            tok = re.match(r"[^\s$.,;{}]+", text[j:])
            if tok:
                out.append((m.start(), j + tok.end(), tok.group(0)))
    return out


def unclosed_box(text: str) -> int:
    """Offset of a `\\boxed{` whose brace never closes (a cut-off answer), else -1. Only the last
    box is checked: an earlier unclosed one swallows the rest, which the brace count catches."""
    i = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    m = BOXED_RE.match(text, i) if i >= 0 else None
    if m is not None:
        j = m.end()
        if j < len(text) and text[j] == "{" and balanced(text, j) is None:
            return m.start()
    return -1


def last_boxed_content(text: str) -> str | None:
    b = boxes(text)
    return b[-1][2] if b else None


def last_box_cluster(text: str) -> tuple[int, int, list[str]] | None:
    """The last box and the boxes just before it that list parts of the same answer."""
    b = boxes(text)
    if not b:
        return None
    start, end, content = b[-1]
    parts = [content]
    for b_start, b_end, b_content in reversed(b[:-1]):
        gap = text[b_end:start]
        if len(gap) > BOX_CLUSTER_GAP or "\n\n" in gap or _CORRECTION_RE.search(_strip_tex_text(gap)):
            break
        start = b_start
        parts.insert(0, b_content)
    return start, end, parts


def _strip_tex_text(s: str) -> str:
    return re.sub(r"\\text\{([^{}]*)\}", r"\1", s)


def strip_math_delims(s: str) -> str:
    s = s.strip().rstrip(".").strip()
    for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(a) and s.endswith(b) and len(s) > len(a) + len(b) - 1:
            return s[len(a) : len(s) - len(b)].strip()
    return s


def _value_after(text: str, pos: int) -> tuple[str, int]:
    """The answer stated from `pos`: a math span kept whole, else up to the end of the sentence."""
    rest = text[pos:]
    fm = re.match(r"\s*(\$\$.+?\$\$|\$[^$]+\$|\\\(.+?\\\)|\\\[.+?\\\])", rest, re.DOTALL)
    if fm:
        return fm.group(1), pos + fm.end()
    cand = re.split(r"\n|\.(?:\s|$)", rest, maxsplit=1)[0]
    if not cand.strip() and rest.strip():
        # "the final answers are:" then a list or a display on the next lines: that block.
        block = rest.lstrip("\n").split("\n\n", 1)[0]
        off = len(rest) - len(rest.lstrip("\n"))
        return block[:400], pos + off + min(len(block), 400)
    return cand, pos + len(cand)


def last_phrase(text: str) -> tuple[int, int, str] | None:
    """(start, end, answer) of the last "final answer is …" phrasing."""
    found = None
    for m in FINAL_PHRASE_RE.finditer(text):
        raw, end = _value_after(text, m.end())
        cand = strip_math_delims(raw.strip("*_ \t"))
        if cand and len(cand) <= 400 and re.search(r"\w", cand):
            found = (m.start(), end, cand)
    return found


def points_back(text: str) -> tuple[int, int, str] | None:
    """(start, end, formula) of the last formula followed by "This is the final answer"."""
    found = None
    for m in _POINTS_BACK_RE.finditer(text):
        before = list(FORMULAS_RE.finditer(text, max(0, m.start() - 1500), m.start()))
        if before and not text[before[-1].end():m.start()].strip(" \t\n.,;:"):
            f = before[-1]
            found = (f.start(), m.end(), next(g for g in f.groups() if g is not None).strip())
    return found


_HEADING_RE = re.compile(r"(?im)^[ \t#]*(?:\*\*|__)?[ \t]*final[ \t]+answers?[ \t]*(?:\*\*|__)?[ \t]*:?[ \t]*(?:\*\*|__)?[ \t]*$")


def last_label(text: str) -> tuple[int, int, str] | None:
    """(start, end, answer) of the last "Answer: …" line (a bold span inside it is the answer), or
    of a "**Final Answer**" heading and the block under it."""
    found = None
    for m in _HEADING_RE.finditer(text):
        rest = text[m.end():].lstrip("\n")
        block = rest.split("\n\n\n", 1)[0][:400].strip()
        if block:
            found = (m.start(), len(text) - len(rest) + len(block), strip_math_delims(block))
    for m in _LABEL_RE.finditer(text):
        line_end = text.find("\n", m.end())
        line_end = len(text) if line_end < 0 else line_end
        value = text[m.end():line_end].strip()
        if not value and line_end < len(text):  # "**Final Answer:**" then the answer on the next line
            nxt = text[line_end + 1:].lstrip("\n")
            off = len(text) - len(nxt)
            value, line_end = _value_after(text, off)
            value = value.strip()
        bold = _BOLD_RE.findall(value)
        if bold:
            value = bold[-1]
        value = strip_math_delims(value.strip("*_ ").strip())
        if value and len(value) <= 200 and (found is None or m.start() > found[0]):
            found = (m.start(), line_end, value)
    return found


def last_bold_number(text: str) -> tuple[int, int, str] | None:
    found = None
    for m in _BOLD_RE.finditer(text):
        v = m.group(1).strip()
        if re.search(r"\d|\\|\$", v):
            found = (m.start(), m.end(), strip_math_delims(v.rstrip(":").strip()))
    return found


def last_formula(text: str) -> str | None:
    found = None
    for m in FORMULAS_RE.finditer(text):
        body = next(g for g in m.groups() if g is not None).strip()
        if body:
            found = body
    return found


def words_to_digits(s: str) -> str:
    """Number words as digits: "twenty-five" → "25", "three hundred" → "300" (0–999 by words)."""
    if not any(w in s.lower() for w in ("zero", "one", "two", "thr", "four", "five", "six", "seven", "eight",
                                       "nine", "ten", "eleven", "twelve", "teen", "ty")):
        return s

    def sub(m: re.Match[str]) -> str:
        if m.group("tens"):
            n = NUMBER_WORDS[m.group("tens").lower()] + (NUMBER_WORDS[m.group("unit").lower()] if m.group("unit") else 0)
        else:
            n = NUMBER_WORDS[m.group("word").lower()] * (100 if m.group("hundred") else 1)
        return str(n)

    return _NUMWORD_RE.sub(sub, s)


# The final answer is at the end: search the last TAIL characters first (the whole text only when
# they hold none), so a long answer part costs what a short one does.
TAIL = 4000


def locate_final_answer(text: str) -> FinalAnswer | None:
    """The final answer in an answer part (see the module docstring), or None."""
    if not text:
        return None
    if len(text) > TAIL:
        off = len(text) - TAIL
        got = _locate(text[off:])
        if got is not None:
            return FinalAnswer(got.answer, got.snippet, got.start + off, got.end + off, got.method)
    return _locate(text)


def _locate(text: str) -> FinalAnswer | None:
    cluster = last_box_cluster(text)
    # Only a statement after the last box can override it: search there (usually a few lines).
    base = cluster[1] if cluster is not None else 0
    sub = text[base:]
    low = sub.lower() if ("nswer" in sub or "NSWER" in sub or "esult" in sub or "ESULT" in sub) else ""
    stated = [(x[0] + base, x[1] + base, x[2]) for x in (
        (last_phrase(sub) if "answer" in low or "result" in low else None),
        (last_label(sub) if "answer" in low or "result" in low else None),
        (points_back(sub) if "final" in low else None)) if x is not None]
    if cluster is not None:
        # After a box, only a statement that carries a value ("the final answer is 7") overrides
        # it; "the final result is consistent with …" does not.
        # A list of parts ("the final answers are:\n- …\n- …") does not override a box either.
        stated = [x for x in stated if "\n" not in x[2] and re.search(r"[\d\\$]", words_to_digits(x[2]))]
    statement = max(stated, key=lambda x: x[0]) if stated else None
    if cluster is not None and (statement is None or statement[0] < cluster[1]):
        start, end, parts = cluster
        return FinalAnswer(", ".join(parts), text[start:end], start, end, "boxed")
    if statement is not None:
        start, end, value = statement
        method = ("final_answer_phrase" if FINAL_PHRASE_RE.match(text, start)
                  else "answer_label" if _LABEL_RE.match(text, start) else "formula_then_final_statement")
        # The grader reads the statement's sentence itself (units, `x = …`, "is 120 square units").
        snippet = words_to_digits(text[start:max(end, start + 1)][:400])
        if method != "final_answer_phrase":
            snippet = words_to_digits(value)
        return FinalAnswer(value, snippet, start, end, method)
    last = text.rstrip().rsplit("\n", 1)[-1]
    m = _FINAL_LINE_LABEL_RE.match(last)
    if m and re.search(r"\d", m.group(1)):
        # The answer's last line is "**Total outfits Laurel has:** 87".
        start = len(text.rstrip()) - len(last) + m.start(1)
        value = strip_math_delims(m.group(1).strip("*_ "))
        return FinalAnswer(value, words_to_digits(value), start, start + len(m.group(1)), "final_line_label")
    bold = last_bold_number(text)
    # A bold result counts only at the end ("… is **42**."), not a bold step heading above.
    if bold is not None and "\n\n" not in text[bold[1]:].strip():
        return FinalAnswer(bold[2], bold[2], bold[0], bold[1], "bold")
    return None


def last_sentence(text: str) -> str:
    """The last sentence of `text` with number words as digits (for a grader's own search)."""
    t = text.rstrip()
    cut = max(t.rfind(". ", 0, len(t) - 1), t.rfind("\n", 0, len(t) - 1))
    return words_to_digits(t[cut + 1:])


def extract_final_answer(answer_text: str) -> str | None:
    """The final answer's text: the located answer, else the last formula; None when neither."""
    got = locate_final_answer(answer_text)
    return got.answer if got else last_formula(answer_text)
