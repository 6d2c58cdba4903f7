"""Code answers: the last fenced block of the answer, run against the prompt's tests in a sandbox.

Tests come in the shapes the public sets use:

- a **Python test script** run after the candidate (HumanEval's ``def check(candidate)`` — called
  with the entry point —, LeetCode's ``my_solution = Solution(); assert …``): one outcome;
- a **list of assert statements** (MBPP's ``test_list``): one outcome per statement, all in one run;
- a **list of ``{input, output}`` cases** (Codeforces style): one run per case, stdout compared
  token by token with the expected output.

`tests` may be given as that Python object or as its JSON / Python-literal text (as stored in the
`prompts.tests` column).

>>> extract_code("Here:\\n```python\\nprint(1)\\n```\\nand done")
'print(1)\\n'
"""

from __future__ import annotations

import ast
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dataengine.verify.result import VerifyResult
from dataengine.verify.sandbox import Limits, RunResult, Sandbox

__all__ = ["CodeResult", "TestOutcome", "extract_code", "parse_tests", "run_tests", "verify_code"]

# Imports the public harnesses put before a candidate (LeetCode solutions use `List` unimported).
PRELUDE = (
    "from typing import *\n"
    "import math, collections, itertools, functools, heapq, bisect, string, re\n"
    "from collections import *\n"
)
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_LANG_ALIASES = {"python": {"python", "py", "python3", "py3"}}
# Marks our per-assert report on stdout, so a candidate's own prints cannot forge it.
_REPORT = "__DATAENGINE_TEST_REPORT_7f3a__"


@dataclass(slots=True)
class TestOutcome:
    name: str
    passed: bool
    status: str  # ok / failed / timeout / output_limit / wrong_answer / error
    detail: str = ""


@dataclass(slots=True)
class CodeResult:
    pass_fraction: float
    outcomes: list[TestOutcome] = field(default_factory=list)

    @property
    def all_passed(self) -> bool:
        return bool(self.outcomes) and all(o.passed for o in self.outcomes)


def extract_code(answer_text: str, language: str = "python") -> str | None:
    """The last fenced block labelled `language` (or an alias); else the last unlabelled block.

    A block in another language (```cpp) is never taken for Python.
    """
    aliases = _LANG_ALIASES.get(language, {language})
    labelled, unlabelled = None, None
    for m in _FENCE.finditer(answer_text):
        lang = m.group(1).lower()
        if lang in aliases:
            labelled = m.group(2)
        elif not lang:
            unlabelled = m.group(2)
    return labelled if labelled is not None else unlabelled


def parse_tests(tests: str | list[Any]) -> str | list[Any]:
    """A test script (str) or a list (asserts or {input, output} cases) from stored text."""
    if isinstance(tests, list):
        return tests
    s = tests.strip()
    if s.startswith("[") and s.endswith("]"):
        for loader in (json.loads, ast.literal_eval):
            try:
                got = loader(s)
            except (ValueError, SyntaxError, json.JSONDecodeError):
                continue
            if isinstance(got, list):
                return got
    return tests


def _tail(s: str, n: int = 300) -> str:
    return s[-n:].strip()


def _status_of(r: RunResult) -> str:
    return r.status if r.status in ("timeout", "output_limit") else "failed"


def _script_program(code: str, script: str, entry_point: str | None) -> str:
    prog = PRELUDE + code + "\n\n" + script + "\n"
    if entry_point and re.search(r"^def check\(", script, re.MULTILINE):
        prog += f"\ncheck({entry_point})\n"
    return prog


def _asserts_program(code: str, asserts: list[str], setup: str = "") -> str:
    # Each statement runs in its own try, so one failing assert does not hide the others; the
    # report is printed last, after a marker the candidate cannot know.
    lines = [PRELUDE + setup + "\n" + code, "", "import sys as __s, json as __j", "__r = []"]
    for i, stmt in enumerate(asserts):
        lines.append("try:")
        lines.append(f"    exec(compile({stmt!r}, 'test_{i}', 'exec'), globals())")
        lines.append("    __r.append([True, ''])")
        lines.append("except BaseException as __e:")
        lines.append("    __r.append([False, type(__e).__name__ + ': ' + str(__e)[:200]])")
    lines.append(f"__s.stdout.write('\\n{_REPORT}' + __j.dumps(__r) + '\\n')")
    return "\n".join(lines) + "\n"


def _same_output(got: str, expected: str) -> bool:
    """Codeforces-style checking: whitespace-separated tokens must match."""
    return got.split() == expected.split()


def run_tests(
    code: str,
    tests: str | list[Any],
    entry_point: str | None = None,
    sandbox: Sandbox | None = None,
    limits: Limits | None = None,
    max_parallel: int = 1,
) -> CodeResult:
    """Run `code` against `tests` in the sandbox; per-test outcomes and the pass fraction."""
    sb = sandbox or Sandbox()
    parsed = parse_tests(tests)
    if isinstance(parsed, str):
        r = sb.run_python(_script_program(code, parsed, entry_point), limits=limits)
        ok = r.status == "ok"
        return CodeResult(float(ok), [TestOutcome("script", ok, "ok" if ok else _status_of(r), "" if ok else _tail(r.stderr))])
    if not parsed:
        raise ValueError("empty test list")
    if all(isinstance(t, str) for t in parsed):
        r = sb.run_python(_asserts_program(code, parsed), limits=limits)
        report = None
        if _REPORT in r.stdout:
            try:
                report = json.loads(r.stdout.rsplit(_REPORT, 1)[1].strip().splitlines()[0])
            except (ValueError, IndexError):
                report = None
        if report is None or len(report) != len(parsed):
            # The candidate crashed before the tests ran (syntax error, exit(), timeout): every
            # test fails with the run's status.
            st = _status_of(r) if r.status != "ok" else "error"
            outs = [TestOutcome(f"test_{i}", False, st, _tail(r.stderr)) for i in range(len(parsed))]
        else:
            outs = [TestOutcome(f"test_{i}", bool(p), "ok" if p else "failed", d) for i, (p, d) in enumerate(report)]
        return CodeResult(sum(o.passed for o in outs) / len(outs), outs)
    cases = []
    for i, t in enumerate(parsed):
        if not isinstance(t, dict) or "input" not in t or "output" not in t:
            raise ValueError(f"test {i}: expected an assert string or an {{input, output}} mapping, got {str(t)[:80]!r}")
        cases.append((str(t["input"]), str(t["output"])))

    def one(i_case: tuple[int, tuple[str, str]]) -> TestOutcome:
        i, (stdin, expected) = i_case
        r = sb.run_python(PRELUDE + code, stdin=stdin, limits=limits)
        if r.status != "ok":
            return TestOutcome(f"case_{i}", False, _status_of(r), _tail(r.stderr))
        if _same_output(r.stdout, expected):
            return TestOutcome(f"case_{i}", True, "ok")
        return TestOutcome(f"case_{i}", False, "wrong_answer", f"expected {expected[:100]!r}, got {r.stdout[:100]!r}")

    with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as ex:
        outs = list(ex.map(one, enumerate(cases)))
    return CodeResult(sum(o.passed for o in outs) / len(outs), outs)


def verify_code(
    answer_text: str,
    tests: str | list[Any] | None,
    entry_point: str | None = None,
    sandbox: Sandbox | None = None,
    limits: Limits | None = None,
    language: str = "python",
) -> VerifyResult:
    """The `code` verifier: extract, run, and turn the outcomes into one verdict.

    correct: every test passed; incorrect: some failed; timeout: every failure was a timeout;
    unparseable: no code block; error: the prompt has no tests.
    """
    if not tests:
        return VerifyResult("error", None, {"reason": "no_tests"})
    code = extract_code(answer_text, language)
    if code is None or not code.strip():
        return VerifyResult("unparseable", None, {"reason": "no_code_block", "language": language})
    res = run_tests(code, tests, entry_point=entry_point, sandbox=sandbox, limits=limits)
    details: dict[str, Any] = {
        "pass_fraction": res.pass_fraction,
        "outcomes": [{"name": o.name, "passed": o.passed, "status": o.status, "detail": o.detail} for o in res.outcomes],
    }
    if res.all_passed:
        return VerifyResult("correct", code, {**details, "reason": "all_tests_passed"})
    failed = [o for o in res.outcomes if not o.passed]
    if failed and all(o.status == "timeout" for o in failed) and res.pass_fraction == 0:
        return VerifyResult("timeout", code, {**details, "reason": "tests_timed_out"})
    return VerifyResult("incorrect", code, {**details, "reason": "tests_failed"})
