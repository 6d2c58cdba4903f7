"""Multiple choice: Math-Verify's own string-extraction cases, option texts, configurable letters."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dataengine.verify.mcq import extract_choice, grade_mcq


def test_math_verify_string_extraction_cases(shared_data: Path) -> None:
    rows = [json.loads(x) for x in (shared_data / "math_verify_cases.jsonl").read_text().splitlines()]
    cases = [r for r in rows if r["harness"] == "parse"]
    assert len(cases) == 7
    for r in cases:
        m = re.search(r"strings=\(([^)]*)\)", r["config"])
        choices = tuple(s.strip(" '\"") for s in m.group(1).split(",") if s.strip()) if m else ("A", "B", "C", "D")
        expected = r["expected"][-1] if r["expected"] else None  # the original-case extraction
        assert extract_choice(r["pred"], choices) == expected, r


def test_letter_forms_and_think_block() -> None:
    assert grade_mcq("C", "<think>A? no. B? no.</think>\\boxed{C}").verdict == "correct"
    assert grade_mcq("(B)", "**Answer: (B)**").verdict == "correct"
    assert grade_mcq("B", "The answer is D").verdict == "incorrect"
    r = grade_mcq("B", "<think>A is tempting but")
    assert r.verdict == "unparseable" and r.details["reason"] == "think_not_closed"


def test_option_text_and_custom_choices() -> None:
    opts = {"A": "Mercury", "B": "Venus", "C": "Mars"}
    assert grade_mcq("B", "It has to be Venus.", options=opts).answer == "B"
    assert grade_mcq("Mars", "the red planet: Mars", options=opts).verdict == "correct"
    assert grade_mcq("T", "Answer: T", choices=("T", "F")).verdict == "correct"
    assert grade_mcq("A", "I am not sure.").verdict == "unparseable"
