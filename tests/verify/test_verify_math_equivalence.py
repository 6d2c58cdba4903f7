"""Equivalence misses of the math verifier, each pinned on the real trace it was found in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataengine.verify.math import MathVerifier, grade_math

SKY = "traces/sky_t1"
R1 = "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"


def _sky(shared_data: Path, file: str, idx: int) -> dict:
    return next(r for r in map(json.loads, (shared_data / SKY / file).read_text().splitlines()) if r["idx"] == idx)


def test_identical_expression_math_verify_cannot_read_is_correct(shared_data: Path) -> None:
    # Minerva: `\frac{1}{3}E_{1}+\frac{2}{3}E_{2}` stays a string for Math-Verify, and the boxed answer
    # differs from the gold only by spaces. Sky-T1 labels it correct.
    row = _sky(shared_data, "minerva__Sky-T1-math-wrong-5K-27B.jsonl", 268)
    assert row["gt"] == "\\frac{1}{3}E_{1}+\\frac{2}{3}E_{2}" and row["score"] == [True]
    res = grade_math(row["gt"], row["code"][0], timeout_s=20)
    assert res.verdict == "correct", res
    # A different expression in the same unreadable notation is still incorrect.
    swapped = "<think>x</think>\\boxed{\\frac{2}{3} E_{1} + \\frac{1}{3} E_{2}}"
    assert grade_math(row["gt"], swapped).verdict == "incorrect"
    assert grade_math(row["gt"], "<think>x</think>\\boxed{\\frac{1}{3} E_{1}}").verdict == "incorrect"


def test_ordinal_suffix_is_not_an_exponent(shared_data: Path) -> None:
    row = _sky(shared_data, "math500__Sky-T1-math-correct-5K-27B.jsonl", 379)
    assert row["gt"] == "12" and "12^{\\text{th}}" in row["code"][0] and row["score"] == [True]
    assert grade_math(row["gt"], row["code"][0], timeout_s=20).verdict == "correct"
    assert grade_math("12", "<think>x</think>The answer is \\boxed{12^{\\text{th}}}").verdict == "correct"
    assert grade_math("13", "<think>x</think>The answer is \\boxed{12^{\\text{th}}}").verdict == "incorrect"
    assert grade_math("12^{\\text{th}}", "<think>x</think>\\boxed{12}").verdict == "correct"
    # a real exponent stays one
    assert grade_math("144", "<think>x</think>\\boxed{12^{2}}").verdict == "correct"


@pytest.mark.parametrize(("gold", "answer", "verdict"), [
    ("\\$36", "<think>x</think>\\boxed{36}", "correct"),
    ("\\$36", "<think>x</think>\\boxed{\\$36}", "correct"),
    ("\\$36", "<think>x</think>\\boxed{35}", "incorrect"),
    ("\\$32,\\!348", "<think>x</think>\\boxed{32,\\!348}", "correct"),
    ("\\$18.90", "<think>x</think>The total is \\boxed{\\$18.90}.", "correct"),
])
def test_escaped_dollar_gold_is_a_currency_not_an_error(gold: str, answer: str, verdict: str) -> None:
    assert grade_math(gold, answer).verdict == verdict


def test_real_dollar_golds_from_r1_traces_grade_in_worker_processes(shared_data: Path) -> None:
    # The R1-Distill/QwQ MATH-500 golds written with `\$` were `error gold_unparseable`; through the
    # process pool (where the stage grades) they are graded.
    rows = [json.loads(x) for x in (shared_data / R1).read_text().splitlines()]
    pairs = [(r["gold_answer"], "<think>\n" + r["response"]) for r in rows
             if "\\$" in r["gold_answer"] and r["has_think_close"] is True]
    assert len(pairs) >= 2
    with MathVerifier(workers=1, timeout_s=20) as mv:
        got = mv.verify_batch(pairs)
    assert all(g.verdict in ("correct", "incorrect") for g in got), got
    assert all(g.verdict == "correct" for g in got), got
