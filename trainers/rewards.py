"""GRPO rewards: a registry of batch functions `(prompts, completions, **columns) -> list[float]`.

`completions` are the completion texts; `columns` carries the dataset columns of each completion's
prompt (e.g. `answer`, `domain`, `tests`, `language`) plus `completion_lengths` (tokens),
`truncated` and `max_completion_length`. A reward that cannot score a completion returns NaN for
it (the trainer counts it as unscorable and gives it zero advantage); a reward never turns an
error into a silent 0.

>>> think_format_reward(["q"], ["<think>\\n2+2=4\\n</think>\\n\\nThe answer is 4."])
[1.0]
>>> overlong_reward(["q"] * 3, ["a"] * 3, completion_lengths=[50, 90, 120], max_completion_length=100, buffer=20)
[0.0, -0.5, -1.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from filters.split import split_completion

RewardFn = Callable[..., list[float]]
REWARDS: dict[str, RewardFn] = {}


def register_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """Register a reward under `name` (the key used in the `grpo.rewards` config mapping)."""

    def deco(fn: RewardFn) -> RewardFn:
        REWARDS[name] = fn
        return fn

    return deco


def get_reward(name: str) -> RewardFn:
    try:
        return REWARDS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(sorted(REWARDS))}") from None


def _column(columns: dict[str, Any], name: str, reward: str, n: int) -> list[Any]:
    if name not in columns:
        raise ValueError(f"reward {reward}: needs a {name!r} column in the prompt dataset; have: {', '.join(sorted(columns))}")
    values = list(columns[name])
    if len(values) != n:
        raise ValueError(f"reward {reward}: column {name!r} has {len(values)} values for {n} completions")
    return values


# --------------------------------------------------------------------------------------------
# Format
# --------------------------------------------------------------------------------------------

@register_reward("format")
def think_format_reward(prompts: Sequence[Any], completions: Sequence[str], *, think_opened_in_prompt: bool = False,
                        **_: Any) -> list[float]:
    """1.0 when the completion is one non-empty think block followed by a non-empty answer (R1's
    format reward), else 0.0. `think_opened_in_prompt`: the template already emitted `<think>`.
    The split is `filters.split.split_completion`, the one the filters and verifiers use."""
    fmt = "prompt_opened" if think_opened_in_prompt else "think"
    out = []
    for c in completions:
        sp = split_completion(c, fmt)
        ok = (sp.think_closed is True and sp.problem is None and bool(sp.reasoning) and bool(sp.answer)
              and (think_opened_in_prompt or c.lstrip().startswith("<think>")))
        out.append(1.0 if ok else 0.0)
    return out


# --------------------------------------------------------------------------------------------
# Length (DAPO soft overlong punishment)
# --------------------------------------------------------------------------------------------


@register_reward("overlong")
def overlong_reward(prompts: Sequence[Any], completions: Sequence[str], *, completion_lengths: Sequence[int],
                    max_completion_length: int, buffer: int = 256, **_: Any) -> list[float]:
    """DAPO's soft overlong punishment: 0 up to `max - buffer` tokens, then a linear ramp to -1 at
    `max`, and -1 beyond (a completion cut at the budget counts as beyond when it had more to say)."""
    if buffer <= 0 or buffer >= max_completion_length:
        raise ValueError(f"reward overlong: buffer must be in (0, max_completion_length), got {buffer}")
    start = max_completion_length - buffer
    out = []
    for n in completion_lengths:
        if n <= start:
            out.append(0.0)
        elif n <= max_completion_length:
            out.append((start - n) / buffer)
        else:
            out.append(-1.0)
    return out


# --------------------------------------------------------------------------------------------
# Accuracy (rule verifiers of dataengine.verify)
# --------------------------------------------------------------------------------------------


def _answer_after_think(completion: str) -> str:
    """The answer part (`filters.split`); graders must not read an answer out of the reasoning.
    A think block that never closed has no answer: the empty string, which grades as unparseable."""
    sp = split_completion(completion)
    return sp.answer if sp.think_closed is not False else ""


@register_reward("accuracy")
def accuracy_reward(prompts: Sequence[Any], completions: Sequence[str], *, answer_column: str = "answer",
                    tests_column: str = "tests", **columns: Any) -> list[float]:
    """1.0 correct / 0.0 incorrect or unparseable (math: `dataengine.verify.math.grade_math` against the
    reference answer); for prompts with tests (code): the pass rate from `dataengine.verify.code.run_tests`.
    A verifier `timeout` or `error` gives NaN (unscorable), never a silent 0."""
    n = len(completions)
    tests = list(columns[tests_column]) if tests_column in columns else [None] * n
    golds = list(columns[answer_column]) if answer_column in columns else [None] * n
    if all(t is None for t in tests):
        golds = _column(columns, answer_column, "accuracy", n)
    out = []
    for i, completion in enumerate(completions):
        answer = _answer_after_think(completion)
        if tests[i] not in (None, "", []):
            out.append(_code_pass_rate(answer, tests[i], columns.get("entry_point", [None] * n)[i]))
        elif golds[i] in (None, ""):
            raise ValueError(f"reward accuracy: completion {i} has neither a reference answer nor tests")
        else:
            out.append(_math_score(str(golds[i]), answer))
    return out


def _math_score(gold: str, answer_text: str) -> float:
    from dataengine.verify.math import grade_math  # here, not at import: math-verify pulls sympy

    verdict = grade_math(gold, answer_text).verdict
    if verdict == "correct":
        return 1.0
    if verdict in ("incorrect", "unparseable"):
        return 0.0
    return math.nan  # timeout / error: unscorable


def _code_pass_rate(answer_text: str, tests: Any, entry_point: str | None) -> float:
    from dataengine.verify.code import extract_code, run_tests

    code = extract_code(answer_text)
    if code is None:
        return 0.0  # no code block: the answer is wrong, not unscorable
    return float(run_tests(code, tests, entry_point=entry_point).pass_fraction)


# --------------------------------------------------------------------------------------------
# Language consistency (R1 stage 2)
# --------------------------------------------------------------------------------------------


def _reasoning(completion: str) -> str:
    sp = split_completion(completion)
    # No markers at all: the whole completion is what the model wrote, judge all of it.
    return sp.reasoning if sp.think_closed is not None else sp.answer


@register_reward("language_consistency")
def language_consistency_reward(prompts: Sequence[Any], completions: Sequence[str], *,
                                language_column: str = "language", default_language: str | None = None,
                                **columns: Any) -> list[float]:
    """R1's language-consistency reward: the share of target-language words in the chain of thought
    (`filters.language_mixing.language_consistency`). The target is the prompt's `language` column,
    else `default_language`."""
    n = len(completions)
    if language_column in columns:
        langs = [lang or default_language for lang in columns[language_column]]
    else:
        langs = [default_language] * n
    if any(lang is None for lang in langs):
        raise ValueError(f"reward language_consistency: no {language_column!r} column and no default_language")
    from filters.language_mixing import language_consistency_batch

    return [float(x) for x in language_consistency_batch([_reasoning(c) for c in completions], langs)]
