"""Code verifier on real problem sets: HumanEval, MBPP, LeetCode asserts, Codeforces stdin cases."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dataengine.verify.code import extract_code, parse_tests, run_tests, verify_code
from dataengine.verify.sandbox import Limits, Sandbox

LIMITS = Limits(wall_s=20, cpu_s=10)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS)


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def corrupt(solution: str, entry_point: str) -> str:
    """A wrong copy of a solution: the same function, its result nudged off by one step."""
    return solution + f"""

__orig = {entry_point}
def {entry_point}(*a, **k):
    r = __orig(*a, **k)
    if isinstance(r, bool):
        return not r
    if isinstance(r, (int, float)):
        return r + 1
    if isinstance(r, str):
        return r + "x"
    if isinstance(r, list):
        return r + [None]
    if isinstance(r, tuple):
        return r + (None,)
    if r is None:
        return 0
    return None
"""


def test_humaneval_canonical_solutions_pass_and_corrupted_copies_fail(shared_data: Path, sandbox: Sandbox) -> None:
    problems = load(shared_data / "code" / "HumanEval.jsonl")
    assert len(problems) == 164

    def grade(p: dict) -> tuple[str, str, str]:
        good = p["prompt"] + p["canonical_solution"]
        answer_good = f"Here is my solution.\n```python\n{good}\n```\n"
        answer_bad = f"```python\n{corrupt(good, p['entry_point'])}\n```"
        g = verify_code(answer_good, p["test"], entry_point=p["entry_point"], sandbox=sandbox)
        b = verify_code(answer_bad, p["test"], entry_point=p["entry_point"], sandbox=sandbox)
        return p["task_id"], g.verdict, b.verdict

    with ThreadPoolExecutor(max_workers=4) as ex:
        results = list(ex.map(grade, problems))
    assert [t for t, g, _ in results if g != "correct"] == []
    assert [t for t, _, b in results if b == "correct"] == []


def test_mbpp_reference_code_passes_its_asserts(shared_data: Path, sandbox: Sandbox) -> None:
    rows = load(shared_data / "code" / "mbpp_full_deepseekcoder.jsonl")[:20]
    for r in rows:
        res = run_tests(r["code"], r["test_list"], sandbox=sandbox)
        assert res.pass_fraction == 1.0, (r["task_id"], res.outcomes)
        assert len(res.outcomes) == len(r["test_list"])


def test_mbpp_asserts_report_each_failure_separately(shared_data: Path, sandbox: Sandbox) -> None:
    row = load(shared_data / "code" / "mbpp_test500_deepseekcoder.jsonl")[0]
    tests = parse_tests(row["test"]) if isinstance(row["test"], str) else row["test"]
    assert isinstance(tests, list) and len(tests) == 3
    # Right for "hello" only: one pass, two failures, each with its own reason.
    code = "def remove_Occ(s, ch):\n    return 'heo' if s == 'hello' else s\n"
    res = run_tests(code, tests, sandbox=sandbox)
    assert [o.passed for o in res.outcomes] == [True, False, False]
    assert res.pass_fraction == pytest.approx(1 / 3)
    assert all("AssertionError" in o.detail for o in res.outcomes[1:])
    assert run_tests(row["code"], row["test"], sandbox=sandbox).pass_fraction == 1.0


def test_leetcode_asserts_run_against_a_solution_class(shared_data: Path, sandbox: Sandbox) -> None:
    row = next(r for r in load(shared_data / "code" / "leetcode_contest_2024_en_deepseekcoder.jsonl")
               if r["title"] == "minimum-number-of-pushes-to-type-word-i")
    right = (
        "class Solution:\n    def minimumPushes(self, word: str) -> int:\n"
        "        return sum(i // 8 + 1 for i in range(len(word)))\n"
    )
    wrong = "class Solution:\n    def minimumPushes(self, word: str) -> int:\n        return len(word)\n"
    assert verify_code(f"```python\n{right}```", row["test"], sandbox=sandbox).verdict == "correct"
    bad = verify_code(f"```python\n{wrong}```", row["test"], sandbox=sandbox)
    assert bad.verdict == "incorrect" and bad.details["reason"] == "tests_failed"


def test_codeforces_stdin_cases(shared_data: Path, sandbox: Sandbox) -> None:
    rows = load(shared_data / "code" / "codeforces_stdin_tests_nemo_skills.jsonl")
    for r in rows:
        cases = parse_tests(r["test_cases"])
        assert isinstance(cases, list) and all({"input", "output"} <= set(c) for c in cases)
        res = run_tests(r["code"], r["test_cases"], sandbox=sandbox, max_parallel=2)
        expect_ok = str(r["is_correct"]).lower() == "true"
        assert (res.pass_fraction == 1.0) == expect_ok, (r["id"], res.outcomes)


def test_extract_code_is_language_aware() -> None:
    text = "```python\nprint(1)\n```\nIn C++:\n```cpp\nint main(){}\n```\n"
    assert extract_code(text) == "print(1)\n"
    assert extract_code(text, "cpp") == "int main(){}\n"
    assert extract_code("```\nx = 1\n```") == "x = 1\n"
    assert extract_code("no code here") is None


def test_verdicts_for_missing_code_and_missing_tests(sandbox: Sandbox) -> None:
    assert verify_code("I think the answer is 4.", "assert True", sandbox=sandbox).details["reason"] == "no_code_block"
    assert verify_code("```python\npass\n```", None, sandbox=sandbox).verdict == "error"
    hang = verify_code("```python\nwhile True: pass\n```", ["assert True"], sandbox=sandbox,
                       limits=Limits(wall_s=2, cpu_s=2))
    assert hang.verdict == "timeout"
