"""Multiple choice: the chosen letter (or the option's text) from the answer part.

>>> grade_mcq("B", "<think>A looks wrong</think>The answer is (B).").verdict
'correct'
>>> grade_mcq("C", "Final answer: Paris", options={"A": "London", "C": "Paris"}).answer
'C'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from dataengine.verify.math import ThinkNotClosed, _last_boxed_content, answer_part
from dataengine.verify.result import VerifyResult

DEFAULT_CHOICES = ("A", "B", "C", "D", "E")


def _letter_patterns(choices: Sequence[str]) -> list[re.Pattern[str]]:
    alt = "|".join(re.escape(c) for c in sorted(choices, key=len, reverse=True))
    return [
        # "answer is (B)", "Answer: B", "final answer is **B**", "選項 B" is left to the judge.
        re.compile(rf"(?:answer|option|choice)\s*(?:is|:)?\s*[*(\[{{]*\s*({alt})\s*[)\]}}*]*(?![\w])", re.IGNORECASE),
        # A line that is only the letter: "B", "(B)", "B.", "**B**".
        re.compile(rf"^\s*[*(\[]*\s*({alt})\s*[)\].:*]*\s*$", re.MULTILINE),
        # "B. Because …" at the very start of the answer.
        re.compile(rf"\A\s*[*(\[]*({alt})[)\].:]\s"),
    ]


def extract_choice(
    answer_text: str,
    choices: Sequence[str] = DEFAULT_CHOICES,
    options: Mapping[str, str] | None = None,
) -> str | None:
    """The chosen option letter, or None. Later statements win over earlier ones.

    Order: a boxed letter; "answer is X" phrasings; a line holding only the letter; a leading
    "X."; the text of an option (when `options` maps letters to texts); finally the last choice
    letter standing alone as a word.
    """
    text = answer_part(answer_text)
    upper = {c.upper(): c for c in choices}
    boxed = _last_boxed_content(text)
    if boxed is not None:
        b = re.sub(r"\\text\{(.*?)\}", r"\1", boxed).strip(" ()*.")
        if b.upper() in upper:
            return upper[b.upper()]
    for pat in _letter_patterns(choices):
        found = [m for m in pat.finditer(text)]
        if found:
            return upper.get(found[-1].group(1).upper(), found[-1].group(1))
    if options:
        low = text.lower()
        hits = [(low.rfind(t.lower().strip()), k) for k, t in options.items() if t.strip() and t.lower().strip() in low]
        if len(hits) == 1:
            return hits[0][1]
        if hits:
            # Several option texts appear: the one stated last is the answer.
            return max(hits)[1]
    # Last resort (as Math-Verify's string extraction): a choice letter standing alone as a word.
    alone = re.findall(rf"(?<![\w'])({'|'.join(re.escape(c) for c in choices)})(?![\w'])", text)
    if alone:
        return upper.get(alone[-1].upper(), alone[-1])
    return None


def grade_mcq(
    gold: str,
    answer_text: str,
    choices: Sequence[str] = DEFAULT_CHOICES,
    options: Mapping[str, str] | None = None,
) -> VerifyResult:
    """correct / incorrect / unparseable for one multiple-choice response."""
    try:
        choice = extract_choice(answer_text, choices, options)
    except ThinkNotClosed:
        return VerifyResult("unparseable", None, {"reason": "think_not_closed"})
    g = gold.strip().strip("()").upper()
    if options and g not in {c.upper() for c in choices}:
        # A gold given as the option's text.
        g = next((k.upper() for k, t in options.items() if t.strip().lower() == gold.strip().lower()), g)
    if choice is None:
        return VerifyResult("unparseable", None, {"reason": "no_choice_found", "choices": list(choices)})
    ok = choice.upper() == g
    return VerifyResult("correct" if ok else "incorrect", choice, {"reason": "same_choice" if ok else "different_choice", "gold": g})
