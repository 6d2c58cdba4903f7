"""Code verifier on real problem sets: HumanEval, MBPP, LeetCode asserts, Codeforces stdin cases."""

from __future__ import annotations

import ast
import json
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dataengine.verify.code import code_tests, extract_code, parse_tests, run_tests, verify_code
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
        g = verify_code(answer_good, p["test"], entry_point=p["entry_point"], sandbox=sandbox, prompt=p["prompt"])
        b = verify_code(answer_bad, p["test"], entry_point=p["entry_point"], sandbox=sandbox, prompt=p["prompt"])
        return p["task_id"], g.verdict, b.verdict

    with ThreadPoolExecutor(max_workers=4) as ex:
        results = list(ex.map(grade, problems))
    assert [t for t, g, _ in results if g != "correct"] == []
    assert [t for t, _, b in results if b == "correct"] == []


def _tested_function(row: dict) -> str | None:
    """The function of the reference code that the first assert calls."""
    with warnings.catch_warnings():  # MBPP's reference code has regexes in plain strings
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(row["code"])
    defs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    return next((d for d in defs if re.search(rf"\b{d}\(", row["test_list"][0])), None)


def test_mbpp_reference_code_passes_and_corrupted_copies_fail(shared_data: Path, sandbox: Sandbox) -> None:
    rows = load(shared_data / "code" / "mbpp_full_deepseekcoder.jsonl")
    rows = rows[:: max(1, len(rows) // 120)]  # an even spread over the set, including setup-code rows
    rows += [r for r in load(shared_data / "code" / "mbpp_full_deepseekcoder.jsonl") if r["test_setup_code"]]

    def grade(r: dict) -> tuple[object, float, int, float | None]:
        setup = r["test_setup_code"]
        good = run_tests(r["code"], r["test_list"], sandbox=sandbox, setup=setup)
        fn = _tested_function(r)
        bad = run_tests(corrupt(r["code"], fn), r["test_list"], sandbox=sandbox, setup=setup) if fn else None
        return r["task_id"], good.pass_fraction, len(good.outcomes), bad.pass_fraction if bad else None

    with ThreadPoolExecutor(max_workers=4) as ex:
        results = list(ex.map(grade, rows))
    assert [t for t, g, _, _ in results if g != 1.0] == []
    assert all(n == len(r["test_list"]) for (_, _, n, _), r in zip(results, rows))
    assert [t for t, _, _, b in results if b == 1.0] == []
    assert sum(b is not None for *_, b in results) >= 0.9 * len(rows)


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
    assert verify_code("I think the answer is 4.", "assert f() == 4", sandbox=sandbox).details["reason"] == "no_code_block"
    assert verify_code("```python\npass\n```", None, sandbox=sandbox).details["reason"] == "no_tests"
    # A test that never calls the program proves nothing about it.
    idle = verify_code("```python\ndef f():\n    return 1\n```", ["assert True", "assert f() == 1"], sandbox=sandbox)
    assert idle.verdict == "incorrect" and [o["passed"] for o in idle.details["outcomes"]] == [False, True]
    hang = verify_code("```python\nwhile True: pass\n```", ["assert f() == 1"], sandbox=sandbox,
                       limits=Limits(wall_s=2, cpu_s=2))
    assert hang.verdict == "timeout"


def test_tests_and_entry_point_come_from_the_prompt_or_the_trace(shared_data: Path) -> None:
    from dataengine.verify.code import check_tests

    he = load(shared_data / "code" / "HumanEval.jsonl")[0]
    # --kind traces: the prompt row has the tests, the trace's metadata the entry point.
    tests, entry, _, source = code_tests(he["test"], {}, {"entry_point": he["entry_point"]})
    assert (tests, entry, source) == (he["test"], he["entry_point"], "prompt")
    assert check_tests(tests, entry).call_check
    # Tests only in the trace's metadata are found there, and checked the same way.
    tests, entry, _, source = code_tests(None, {}, {"test": he["test"], "entry_point": he["entry_point"]})
    assert source == "trace_metadata" and tests == he["test"] and entry == he["entry_point"]
    # The prompt's tests win over the trace's.
    assert code_tests(he["test"], {}, {"test": "assert False"})[0] == he["test"]
    # MBPP's setup code travels with its asserts.
    mb = next(r for r in load(shared_data / "code" / "mbpp_full_deepseekcoder.jsonl") if r["test_setup_code"])
    assert code_tests(None, {"test_list": mb["test_list"], "test_setup_code": mb["test_setup_code"]}, {})[2] == mb["test_setup_code"]


def test_a_check_function_with_its_entry_point_only_in_the_trace_runs(shared_data: Path, sandbox: Sandbox) -> None:
    """`return False` once passed because check() never ran: the entry point was in the trace."""
    he = load(shared_data / "code" / "HumanEval.jsonl")[0]
    tests, entry, _, _ = code_tests(he["test"], {}, {"entry_point": he["entry_point"]})
    wrong = verify_code("```python\ndef has_close_elements(numbers, threshold):\n    return False\n```", tests, entry,
                        sandbox=sandbox)
    assert wrong.verdict == "incorrect"
    assert verify_code(f"```python\n{he['prompt'] + he['canonical_solution']}```", tests, entry, sandbox=sandbox).verdict == "correct"
