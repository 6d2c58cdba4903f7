"""Code answers: the last fenced block of the answer, run against the tests in a sandbox.

Tests come in the shapes the public sets use:

- a **Python test script** (HumanEval's ``def check(candidate)`` — called with the entry point —,
  LeetCode's ``my_solution = Solution(); assert …``): one outcome;
- a **list of assert statements** (MBPP's ``test_list``): one outcome per statement;
- a **list of ``{input, output}`` cases** (Codeforces style, or ``{"inputs": [...], "outputs": [...]}``):
  one run per case, stdout compared token by token with the expected output in the parent.

A verdict the program cannot write: scripts and asserts run in a separate judge process under
another uid (`_harness.py`) that calls into the program over a pipe and gets plain data back; the
judge reports each test's outcome on a channel only it holds, stamped with a per-run nonce, and
`correct` needs a whole report — every test, each of which called the program, all passed. Exit
codes, anything the program prints and a missing report never count as a pass. Stdin/stdout
expected outputs never enter the sandbox. Malformed tests are `error` (`tests_malformed`).

`tests` may be given as that Python object or as its JSON / Python-literal text (as stored in the
`prompts.tests` column).

>>> extract_code("Here:\\n```python\\nprint(1)\\n```\\nand done")
'print(1)\\n'
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dataengine.verify.result import VerifyResult
from dataengine.verify.sandbox import Limits, RunResult, Sandbox

__all__ = ["CodeResult", "TestOutcome", "TestSpec", "TestsMalformed", "check_tests", "code_tests", "extract_code", "parse_tests",
           "run_tests", "verify_code"]

# Imports the public harnesses put before a candidate (LeetCode solutions use `List` unimported).
PRELUDE = (
    "from typing import *\n"
    "import math, collections, itertools, functools, heapq, bisect, string, re\n"
    "from collections import *\n"
)
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_LANG_ALIASES = {"python": {"python", "py", "python3", "py3"}}


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

    runs: list[dict[str, object]] = field(default_factory=list)  # each sandbox run's details

    @property
    def all_passed(self) -> bool:
        return bool(self.outcomes) and all(o.passed for o in self.outcomes)

    @property
    def isolation(self) -> list[str]:
        """The isolation layers active in every run behind this result."""
        layers = [list(d.get("isolation") or []) for d in self.runs]  # type: ignore[call-overload]
        return [x for x in layers[0] if all(x in ls for ls in layers)] if layers else []


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


class TestsMalformed(ValueError):
    """`tests` that cannot show a program right: empty, blank, not Python, the wrong shape, a
    `check()` with no `entry_point` to call it with. Graded `error` (`tests_malformed`)."""


@dataclass(frozen=True, slots=True)
class TestSpec:
    """Tests in one checked shape. mode: `script` (one outcome), `asserts` (one per statement)
    or `stdio` (one per {input, output} case)."""

    mode: str
    tests: tuple[Any, ...]
    entry_point: str | None = None
    call_check: bool = False
    setup: str = ""
    helpers: str = ""  # the prompt, where it is Python: its definitions are the tests' helpers


def parse_tests(tests: str | list[Any] | dict[str, Any]) -> str | list[Any] | dict[str, Any]:
    """A test script (str), a list (asserts or {input, output} cases) or a mapping from stored text."""
    if not isinstance(tests, str):
        return tests
    s = tests.strip()
    if (s.startswith("[") and s.endswith("]")) or (s.startswith("{") and s.endswith("}")):
        for loader in (json.loads, ast.literal_eval):
            try:
                got = loader(s)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(got, (list, dict)):
                return got
    return tests


def _python(src: str, what: str) -> ast.Module:
    if not src.strip():
        raise TestsMalformed(f"{what} is empty or whitespace")
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise TestsMalformed(f"{what} is not valid Python: {str(e)[:200]}") from None
    if not any(isinstance(n, (ast.Assert, ast.Raise)) for n in ast.walk(tree)):
        raise TestsMalformed(f"{what} asserts nothing")
    return tree


def check_tests(tests: Any, entry_point: Any = None, setup: Any = "") -> TestSpec:
    """Check `tests` (and `entry_point`) and put them in one shape; `TestsMalformed` says why not.

    Never lenient: a test that could pass whatever the program does is malformed.
    """
    if entry_point is not None and (not isinstance(entry_point, str) or not entry_point.isidentifier()):
        raise TestsMalformed(f"entry_point {entry_point!r} is not a Python name")
    if setup is None:
        setup = ""
    if not isinstance(setup, str):
        raise TestsMalformed(f"test setup code must be text, got {type(setup).__name__}")
    if isinstance(tests, str) and not tests.strip():
        raise TestsMalformed("tests are empty or whitespace")
    parsed = parse_tests(tests)
    if isinstance(parsed, dict):
        if parsed.get("fn_name"):
            raise TestsMalformed("call-based tests ({inputs, outputs, fn_name}) are not supported; give asserts")
        if isinstance(parsed.get("inputs"), list) and isinstance(parsed.get("outputs"), list):
            if len(parsed["inputs"]) != len(parsed["outputs"]):
                raise TestsMalformed("tests: 'inputs' and 'outputs' differ in length")
            parsed = [{"input": i, "output": o} for i, o in zip(parsed["inputs"], parsed["outputs"])]
        else:
            raise TestsMalformed(
                f"tests must be a list (asserts or {{input, output}} cases) or a test script, got a mapping "
                f"with keys {sorted(map(str, parsed))[:5]}")
    if isinstance(parsed, str):
        tree = _python(parsed, "test script")
        defines_check = any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body)
        if defines_check and entry_point is None:
            raise TestsMalformed("the test script defines check() but no entry_point says what to call it with")
        return TestSpec("script", (parsed,), entry_point, defines_check, setup)
    if not isinstance(parsed, list) or not parsed:
        raise TestsMalformed(f"tests must be a non-empty list or a test script, got {type(parsed).__name__} {str(parsed)[:80]!r}")
    if all(isinstance(t, str) for t in parsed):
        for i, t in enumerate(parsed):
            _python(t, f"test {i}")
        if setup.strip():
            try:
                ast.parse(setup)
            except (SyntaxError, ValueError) as e:
                raise TestsMalformed(f"test setup code is not valid Python: {str(e)[:200]}") from None
        return TestSpec("asserts", tuple(parsed), entry_point, False, setup)
    cases = []
    for i, t in enumerate(parsed):
        if not isinstance(t, dict) or "input" not in t or "output" not in t:
            raise TestsMalformed(f"test {i}: expected an assert string or an {{input, output}} mapping, got {str(t)[:80]!r}")
        inp, out = t["input"], t["output"]
        if isinstance(inp, list) and all(isinstance(x, str) for x in inp):
            inp = "\n".join(inp) + "\n"
        if isinstance(out, list) and all(isinstance(x, str) for x in out):
            out = "\n".join(out) + "\n"
        if not isinstance(inp, str) or not isinstance(out, (str, int, float)) or isinstance(out, bool):
            raise TestsMalformed(f"test {i}: input and output must be text, got {type(inp).__name__}/{type(out).__name__}")
        cases.append((inp, str(out)))
    if all(not out.strip() for _, out in cases):
        raise TestsMalformed("every case expects empty output: any silent program would pass")
    return TestSpec("stdio", tuple(cases), entry_point)


# Where datasets keep tests and their setup, in the order they are looked for.
_TEST_KEYS = ("tests", "test", "test_list", "test_cases", "input_output")
_SETUP_KEYS = ("test_setup_code", "test_setup")


def code_tests(
    prompt_tests: Any, prompt_meta: dict[str, Any], trace_meta: dict[str, Any]
) -> tuple[Any, str | None, str, str]:
    """(tests, entry_point, setup, where the tests came from) for one trace.

    The prompt's `tests` column first, then its metadata, then the trace's metadata (traces
    ingested with `--kind traces` keep `entry_point`, `test`, ... there); the entry point and setup
    the same way. Whatever is found goes through the same `check_tests`.
    """
    tests, source = prompt_tests, "prompt"
    if tests is None or (isinstance(tests, str) and not tests):
        tests, source = None, "none"
        for where, meta in (("prompt_metadata", prompt_meta), ("trace_metadata", trace_meta)):
            found = next((meta[k] for k in _TEST_KEYS if meta.get(k) is not None), None)
            if found is not None:
                tests, source = found, where
                break
    entry = prompt_meta.get("entry_point")
    if entry is None:
        entry = trace_meta.get("entry_point")
    setup = next((m[k] for m in (prompt_meta, trace_meta) for k in _SETUP_KEYS if m.get(k)), "")
    return tests, entry, setup, source


def prompt_helpers(prompt: str | None) -> bool:
    """Whether the prompt is Python with definitions of its own (HumanEval's prompts are: the
    entry point's signature and docstring, and helpers such as `poly` that the tests call)."""
    if not prompt or "def " not in prompt:
        return False
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body)


def _tail(s: str, n: int = 300) -> str:
    return s[-n:].strip()


def _status_of(r: RunResult) -> str:
    return r.status if r.status in ("timeout", "output_limit", "error") else "failed"


def _same_output(got: str, expected: str) -> bool:
    """Codeforces-style checking: whitespace-separated tokens must match."""
    return got.split() == expected.split()


def _judged_outcomes(r: RunResult, n: int) -> list[TestOutcome] | None:
    """The judge's per-test outcomes, or None unless the report is whole: every line carries the
    run's nonce, it announces `n` tests, each test 0..n-1 reports exactly once, and it ends."""
    rep = r.report or []
    if not r.nonce or not rep or any(line.get("nonce") != r.nonce for line in rep):
        return None
    if rep[0].get("event") != "start" or rep[0].get("n") != n or rep[-1].get("event") != "done":
        return None
    tests = rep[1:-1]
    if len(tests) != n or [t.get("event") for t in tests] != ["test"] * n or [t.get("i") for t in tests] != list(range(n)):
        return None
    outs = []
    for t in tests:
        passed = t.get("passed") is True and isinstance(t.get("calls"), int) and t["calls"] > 0
        outs.append(TestOutcome(f"test_{t['i']}", passed, "ok" if passed else "failed", str(t.get("detail", ""))[:400]))
    return outs


def run_tests(
    code: str,
    tests: str | list[Any] | dict[str, Any] | TestSpec,
    entry_point: str | None = None,
    sandbox: Sandbox | None = None,
    limits: Limits | None = None,
    max_parallel: int = 1,
    setup: str = "",
) -> CodeResult:
    """Run `code` against `tests` in the sandbox; per-test outcomes and the pass fraction.

    Raises `TestsMalformed` for tests that cannot show anything.
    """
    spec = tests if isinstance(tests, TestSpec) else check_tests(tests, entry_point, setup)
    sb = sandbox or Sandbox()
    if spec.mode in ("script", "asserts"):
        job = {"mode": spec.mode, "tests": list(spec.tests), "entry_point": spec.entry_point,
               "call_check": spec.call_check, "setup": spec.setup, "prelude": PRELUDE, "helpers": spec.helpers}
        r = sb.run_judged(PRELUDE + code, job, limits=limits)
        names = ["script"] if spec.mode == "script" else [f"test_{i}" for i in range(len(spec.tests))]
        outs = _judged_outcomes(r, len(spec.tests))
        if outs is None:
            # No whole report: the run died, hung or was tampered with before the tests finished.
            st = _status_of(r)
            detail = r.details.get("sandbox_error") or _tail(r.stderr) or "no complete test report"
            outs = [TestOutcome(nm, False, st, str(detail)) for nm in names]
        else:
            for o, nm in zip(outs, names):
                o.name = nm
        return CodeResult(sum(o.passed for o in outs) / len(outs), outs, [r.details])

    def one(i_case: tuple[int, tuple[str, str]]) -> tuple[TestOutcome, dict[str, object]]:
        i, (stdin, expected) = i_case
        r = sb.run_python(PRELUDE + code, stdin=stdin, limits=limits)
        if r.status != "ok":
            return TestOutcome(f"case_{i}", False, _status_of(r), _tail(r.stderr)), r.details
        if _same_output(r.stdout, expected):
            return TestOutcome(f"case_{i}", True, "ok"), r.details
        return TestOutcome(f"case_{i}", False, "wrong_answer", f"expected {expected[:100]!r}, got {r.stdout[:100]!r}"), r.details

    with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as ex:
        got = list(ex.map(one, enumerate(spec.tests)))
    outs = [o for o, _ in got]
    return CodeResult(sum(o.passed for o in outs) / len(outs), outs, [d for _, d in got])


def verify_code(
    answer_text: str,
    tests: str | list[Any] | dict[str, Any] | None,
    entry_point: str | None = None,
    sandbox: Sandbox | None = None,
    limits: Limits | None = None,
    language: str = "python",
    setup: str = "",
    prompt: str | None = None,
) -> VerifyResult:
    """The `code` verifier: extract, run, and turn the outcomes into one verdict.

    correct: the judge (or, for stdin/stdout cases, the parent) saw every test run and pass;
    incorrect: some failed or there is no whole report; timeout: every failure was a timeout;
    unparseable: no code block; error: no tests (`no_tests`), tests that cannot show anything
    (`tests_malformed`), or a sandbox that could not start (`sandbox_error`). `prompt`: where it is
    Python (HumanEval), the tests call its helpers, not the program's redefinitions of them.
    """
    if tests is None or (isinstance(tests, (list, dict)) and not tests):
        return VerifyResult("error", None, {"reason": "no_tests"})
    try:
        spec = check_tests(tests, entry_point, setup)
        if spec.entry_point and prompt_helpers(prompt):
            spec = dataclasses.replace(spec, helpers=prompt or "")
    except TestsMalformed as e:
        return VerifyResult("error", None, {"reason": "tests_malformed", "error": str(e)[:300]})
    code = extract_code(answer_text, language)
    if code is None or not code.strip():
        return VerifyResult("unparseable", None, {"reason": "no_code_block", "language": language})
    res = run_tests(code, spec, sandbox=sandbox, limits=limits)
    details: dict[str, Any] = {
        "pass_fraction": res.pass_fraction,
        "tests": len(res.outcomes),
        "test_mode": spec.mode,
        "isolation": res.isolation,
        "outcomes": [{"name": o.name, "passed": o.passed, "status": o.status, "detail": o.detail} for o in res.outcomes],
    }
    if any(o.status == "error" for o in res.outcomes):
        return VerifyResult("error", code, {**details, "reason": "sandbox_error"})
    if res.all_passed and len(res.outcomes) == len(spec.tests):
        return VerifyResult("correct", code, {**details, "reason": "all_tests_passed"})
    failed = [o for o in res.outcomes if not o.passed]
    if failed and all(o.status == "timeout" for o in failed) and res.pass_fraction == 0:
        return VerifyResult("timeout", code, {**details, "reason": "tests_timed_out"})
    return VerifyResult("incorrect", code, {**details, "reason": "tests_failed"})
