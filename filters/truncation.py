"""Is an answer cut off? The format filter's truncation verdicts, each its own reason.

A sampler that hits its token limit without saying so (no `finish_reason`, or a source file that
dropped it) leaves an answer that stops mid-sentence or mid-formula. Checked on the answer part
(after the think block), in this order:

| reason | the answer ends … |
|---|---|
| `truncated_partial_token` | inside a special token (`<|end_of_`, `<｜end▁of`) |
| `truncated_code_fence` | inside a fenced code block (an odd number of ```) |
| `truncated_unclosed_boxed` | inside `\\boxed{` |
| `truncated_mid_formula` | inside `\\[`, `$$`, `\\(`, `\\begin{…}`, or with unbalanced braces |
| `truncated_mid_sentence` | on a word, comma, operator, open bold or dangling list bullet |

What is *not* truncation (each seen in the labelled real traces, tests/labelled_traces.tsv): a
final formula or box (`\\]`, `$`, `}`), a closing bold `**`, a table row `|`, a number, a quote
or bracket, an emoji or other symbol, CJK full stops, an "Answer: word" label line, and a short
last line introduced by a colon ("the answer is:" / "**Square**").

>>> truncation_reason("The cat sat on the")[0]
'truncated_mid_sentence'
>>> truncation_reason("So the area is \\\\boxed{25")[0]
'truncated_unclosed_boxed'
>>> truncation_reason("**Answer:** Tetrahedron")[0] is None
True
"""

from __future__ import annotations

import re
import unicodedata

from filters.answer import unclosed_box

TRUNCATION_REASONS = ("truncated_partial_token", "truncated_code_fence", "truncated_unclosed_boxed",
                      "truncated_mid_formula", "truncated_mid_sentence")
# The start of a special token cut off at the end: `<|`, `<｜` (DeepSeek's fullwidth bar), then
# token characters and no closing bar.
_PARTIAL_TOKEN_RE = re.compile(r"<[|｜][A-Za-z0-9_▁\-]*[|｜]?$|<[|｜]?$")
_FENCE_RE = re.compile(r"^[ \t]*(?:```|~~~)", re.MULTILINE)
# A last line that states a result after a label: "**Answer:** sound", "Total = 3", "Final answer: B".
_LABEL_LINE_RE = re.compile(r"^[\s>#*_\-\d.]*[^:：=]{0,60}(?:[:：=]|\*\*\s*$)")
_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|[a-zA-Z][.)])\s")
_FUNCTION_WORDS = frozenset("""a an the and or but nor of to in on at by for from with into onto than that which who whose
whom where when while as if because so such is are was were be been being has have had will would can could should
may might must its their our your his her my this these those very more most each every per about like including
between through during without within""".split())  # noqa: SIM905 - a word list reads better as text
_ENDS_OK = set(".!?。！？…;)]}>\"'”’»`|$*_~%°")
_ENDS_CUT = set(",，、-–—(=+/\\^&<[{")


def _code_free(text: str) -> str:
    """`text` without fenced code blocks (their braces and `$` are code, not LaTeX)."""
    if "```" not in text:
        return text
    return re.sub(r"```.*?```", " ", text, flags=re.DOTALL)


def _mid_formula(text: str) -> int:
    """Offset of an unclosed display/inline formula or environment, or -1 (str.count in C: this
    runs on every answer)."""
    t = _code_free(text)
    for op, cl in (("\\[", "\\]"), ("\\(", "\\)"), ("\\begin{", "\\end{")):
        # `\\[2pt]` in an array is a line break, not a display opening.
        if t.count(op) - t.count("\\" + op) > t.count(cl) - t.count("\\" + cl):
            return t.rfind(op)
    if t.replace("\\$", "").count("$$") % 2:
        return t.rfind("$$")
    if t.count("{") - t.count("\\{") > t.count("}") - t.count("\\}"):
        return t.rfind("{")
    # A `$` opened on the last line around LaTeX that never closes ("… $x^2 + \frac{1").
    # (`\$` is a dollar sign; "$5" a price; an answer ending on punctuation closed its formula.)
    last = re.sub(r"\\\$|\$(?=\d)", "  ", t.rstrip().rsplit("\n", 1)[-1])
    if last.count("$") % 2 and last[-1] not in _ENDS_OK and re.search(r"[\\^_{]", last[last.rfind("$"):]):
        return len(t) - len(last) + last.rfind("$")
    return -1


def _siblings_end_sentences(lines: list[str]) -> bool | None:
    """Whether the list items before the last one (same indent) mostly end as sentences (then the
    last item, which does not, was cut); None when it has no sibling."""
    indent = len(lines[-1]) - len(lines[-1].lstrip())
    ends = []
    for ln in reversed(lines[:-1]):
        if not ln.strip():
            continue
        ind = len(ln) - len(ln.lstrip())
        if ind < indent and _LIST_ITEM_RE.match(ln) is None:
            break  # left the list
        if ind == indent and _LIST_ITEM_RE.match(ln) and not ln.rstrip().rstrip("*").endswith((":", "：")):
            ends.append(ln.rstrip().rstrip("*_\"'”’)]")[-1:] in (".", "!", "?", "。", "！", "？"))
            if len(ends) == 3:
                break
    if not ends:
        return None  # no sibling to compare with
    return sum(ends) * 2 > len(ends)


def _mid_sentence(text: str) -> bool:
    t = text.rstrip()
    if not t:
        return False
    lines = t.split("\n")
    last = lines[-1].strip()
    if last.count("**") % 2:
        return True  # an open bold: "- **Low Un"
    if re.fullmatch(r"[-*+•]|\d+[.)]|#+", last):
        return True  # a dangling list bullet or heading mark
    prev = next((ln.strip() for ln in reversed(lines[:-1]) if ln.strip()), "")
    if re.fullmatch(r"\d+", last) and (re.match(r"\d+[.)]\s", prev) or (prev.startswith(("#", "**")) and prev.rstrip("*").endswith(":"))):
        return True  # the number of the next list item, under a list or a list heading
    c = t[-1]
    core_end = last.rstrip("*_\"'”’)]")[-1:]  # "10. “Bored? Play our games!”" ends its sentence
    if _LIST_ITEM_RE.match(lines[-1]) and core_end not in (".", "!", "?", "。", "！", "？", "…"):
        siblings = _siblings_end_sentences(lines)
        if siblings:
            return True  # "- **Economic Boost:** Increased wages" after items ending with a full stop
        if siblings is False:
            # A list of titles or names ("- Wild Swans", "- My Struggle", "3. C++") ends like its
            # siblings; only a dangling function word ("… a subset of the") says it was cut.
            words = last.split()
            return bool(words) and words[-1].strip("*_") in _FUNCTION_WORDS  # lower case only: "5. A" is an option
    last_token = last.split()[-1] if last.split() else ""
    if last_token.startswith(("http://", "https://", "#", "@")):
        return False  # a link, hashtag or handle closes the text
    if c in _ENDS_OK or c.isdigit():
        return False
    if c in _ENDS_CUT:
        return True
    if c in ":：":
        return True  # a label whose value never came
    cat = unicodedata.category(c)
    if cat.startswith("S") or cat.startswith("M") or cat in ("Pe", "Pf", "Po"):
        return False  # emoji, symbols, closing punctuation of any script
    if not cat.startswith("L"):
        return False
    words = last.split()
    if words and words[-1].strip("*_") in _FUNCTION_WORDS:
        return True  # "… and", "… of the": no sentence ends there
    if len(lines) == 1 and len(words) <= 3:
        return False  # a one-line short answer: "Paris", "Yes", "Tetrahedron"
    # Ends on a letter: fine only as a short labelled result ("**Answer:** mountain range") or a
    # short line introduced by a colon; a list item's text ("- **Economic Boost:** Increased
    # wages") is a sentence that was cut.
    if re.search(r"[\d)$]", " ".join(last.split()[-2:])):
        return False  # a value and its unit: "2.78 \\) meters", "1550 °C", "5 apples"
    label = _LABEL_LINE_RE.match(last)
    if label:
        value_words = len(last[label.end():].split())
        if value_words <= (3 if _LIST_ITEM_RE.match(last) else 5):
            return False
    return not (len(last.split()) <= 6 and (prev.endswith((":", "：", "**")) or last.startswith(("**", "#"))))


def truncation_reason(answer: str) -> tuple[str | None, int]:
    """(reason, offset in `answer` where the cut shows) or (None, -1): see the module docstring."""
    t = answer.rstrip()
    if not t:
        return None, -1
    m = _PARTIAL_TOKEN_RE.search(t[-40:])
    if m:
        return "truncated_partial_token", len(t) - 40 + m.start() if len(t) > 40 else m.start()
    fences = [m.start() for m in _FENCE_RE.finditer(t)] if ("```" in t or "~~~" in t) else []
    if len(fences) % 2:
        return "truncated_code_fence", fences[-1]
    at = unclosed_box(t)
    if at >= 0:
        return "truncated_unclosed_boxed", at
    at = _mid_formula(t)
    if at >= 0:
        return "truncated_mid_formula", at
    if _mid_sentence(t):
        cut = max(t.rfind("\n"), t.rfind(". "))
        return "truncated_mid_sentence", cut + 1
    return None, -1
