"""The one think/answer split: a completion → reasoning, answer, whether the think block closed.

Every stage (ingest, the filters, verify, rewards, export) calls `split_completion`, so one
completion has one reasoning and one answer everywhere. Formats:

| format | shape |
|---|---|
| `think` | `<think>reasoning</think>answer` |
| `prompt_opened` | the chat template emitted `<think>`: `reasoning</think>answer` |
| `sky_t1` | `<|begin_of_thought|>…<|end_of_thought|><|begin_of_solution|>…<|end_of_solution|>` |
| `none` | no think markers: all of it is the answer |

The answer is what follows the **last** closing marker, so it never contains a think marker and
no grader can read an answer out of the reasoning. Repeated or out-of-order markers do not get a
second meaning: they are reported in `problem` (a format verdict), and the split stays the same.

>>> s = split_completion("<think>2+2 is 4.</think>The answer is 4.")
>>> (s.reasoning, s.answer, s.think_closed, s.think_format, s.problem)
('2+2 is 4.', 'The answer is 4.', True, 'think', None)
>>> split_completion("so far so", "prompt_opened").think_closed  # cut off inside the reasoning
False
>>> split_completion("a</think>b</think>c").problem
'think_tags_repeated'
>>> s = split_completion("<|begin_of_thought|>x<|end_of_thought|><|begin_of_solution|>42")
>>> (s.answer, s.answer_closed)
('42', False)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThinkFormat:
    """Markers around the reasoning (and, for Sky-T1, around the answer)."""

    name: str
    open: str | None
    close: str | None
    answer_open: str | None = None
    answer_close: str | None = None
    # The chat template put `open` in the prompt, so the completion starts inside the reasoning.
    opened_in_prompt: bool = False


THINK_FORMATS: dict[str, ThinkFormat] = {
    "think": ThinkFormat("think", "<think>", "</think>"),
    "prompt_opened": ThinkFormat("prompt_opened", "<think>", "</think>", opened_in_prompt=True),
    "sky_t1": ThinkFormat("sky_t1", "<|begin_of_thought|>", "<|end_of_thought|>",
                          answer_open="<|begin_of_solution|>", answer_close="<|end_of_solution|>"),
    "none": ThinkFormat("none", None, None),
}
# Every marker of every format: none of them may appear in an answer or a second time.
ALL_MARKERS = ("<think>", "</think>", "<|begin_of_thought|>", "<|end_of_thought|>",
               "<|begin_of_solution|>", "<|end_of_solution|>")

# Problems, as format reasons (stable names).
TAGS_REPEATED = "think_tags_repeated"
TAGS_OUT_OF_ORDER = "think_tags_out_of_order"


@dataclass(frozen=True, slots=True)
class Split:
    reasoning: str
    answer: str
    # None: no think block at all; False: the block opened (or the template opened it) and never closed.
    think_closed: bool | None
    think_format: str
    # None, or the format reason for markers that are repeated / out of order.
    problem: str | None = None
    # Offset in the completion of the marker behind `problem` (for `sample`), else -1.
    problem_at: int = -1
    # Sky-T1 only: False when `<|begin_of_solution|>` opened and `<|end_of_solution|>` never came
    # (informational: many complete Sky-T1 answers in ../shared/data lack the end marker).
    answer_closed: bool | None = None


def detect_think_format(completion: str) -> str:
    """The format of one completion (sources with a known format should say it instead)."""
    if "<|begin_of_thought|>" in completion or "<|end_of_thought|>" in completion:
        return "sky_t1"
    if completion.lstrip().startswith("<think>"):
        return "think"
    if "</think>" in completion:
        return "prompt_opened"
    if "<think>" in completion:
        return "think"  # opened late: the split reports what is before it
    return "none"


def split_completion(completion: str, think_format: str = "auto") -> Split:
    """Split a raw completion into reasoning and answer (see the module docstring).

    A missing closing marker is recorded (`think_closed=False`, empty answer), never guessed away:
    a truncated chain of thought has no answer.
    """
    if not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    if think_format in (None, "", "auto"):
        think_format = detect_think_format(completion)
    try:
        fmt = THINK_FORMATS[think_format]
    except KeyError:
        raise ValueError(f"unknown think format {think_format!r}; known: {sorted(THINK_FORMATS)} or 'auto'") from None
    if fmt.open is None or fmt.close is None:
        return Split("", completion.strip(), None, fmt.name)

    first_open = completion.find(fmt.open)
    last_close = completion.rfind(fmt.close)
    n_open = completion.count(fmt.open)
    n_close = completion.count(fmt.close)
    problem, at = None, -1
    if first_open < 0 and last_close < 0:
        if fmt.opened_in_prompt:
            return Split(completion.strip(), "", False, fmt.name)  # cut off inside the reasoning
        # No marker where one was expected: all of it is an answer, and no think block.
        return Split("", completion.strip(), None, fmt.name)
    # Reasoning starts after the first opening marker; a prompt-opened completion starts at 0.
    start = 0
    if first_open >= 0 and (not fmt.opened_in_prompt or not completion[:first_open].strip()):
        start = first_open + len(fmt.open)
    expected_open = 0 if fmt.opened_in_prompt else 1
    if n_close > 1 or n_open > expected_open:
        problem = TAGS_REPEATED
        if n_close > 1:
            at = completion.find(fmt.close, completion.find(fmt.close) + 1)
        else:
            at = completion.find(fmt.open, first_open + 1) if expected_open else first_open
    elif expected_open and first_open >= 0 and 0 <= completion.find(fmt.close) < first_open:
        # A close before the open. (A close with no open at all is the prompt-opened shape: the
        # template emitted the opening marker, as Sky-T1 rows without `<|begin_of_thought|>` show.)
        problem, at = TAGS_OUT_OF_ORDER, first_open
    if last_close < start:
        # Opened and never closed (a close before the open is out of order: no answer either).
        return Split(completion[start:].strip(), "", False, fmt.name, problem, at)
    reasoning = completion[start:last_close]
    answer = completion[last_close + len(fmt.close):]
    answer_closed = None
    if fmt.answer_open is not None:
        a = answer.find(fmt.answer_open)
        if a >= 0:
            answer = answer[a + len(fmt.answer_open):]
            answer_closed = False
        if fmt.answer_close is not None:
            b = answer.rfind(fmt.answer_close)
            if b >= 0:
                answer, answer_closed = answer[:b], True
    if problem is None:
        # A marker of any format left in the answer, or another format's markers anywhere (a
        # `<think>` block inside a Sky-T1 reasoning): two meanings, so a verdict.
        own = {fmt.open, fmt.close, fmt.answer_open, fmt.answer_close}
        others = "<|" in completion if fmt.name != "sky_t1" else "think>" in completion
        for m in (ALL_MARKERS if others else (x for x in ALL_MARKERS if x in own)):
            i = answer.find(m) if m in own else completion.find(m)
            if i >= 0:
                problem, at = TAGS_REPEATED, completion.rfind(m) if m in own else i
                break
    return Split(reasoning.strip(), answer.strip(), True, fmt.name, problem, at, answer_closed)
