"""Math answers: Math-Verify decides equivalence; we decide *which* answer is graded.

What this module adds to Math-Verify (and why):

- **The final answer comes from the answer part.** A chain of thought is full of intermediate
  values; grading the whole completion lets an early guess count. `extract_final_answer` looks
  after the think block only: the last ``\\boxed{}`` first, then "final answer is …" phrasings,
  then the last formula. A think block that never closed (truncated generation) has no answer:
  `unparseable`, never a guess.
- **Hard timeouts that work.** Math-Verify's timeouts use ``signal.alarm``, which raises in
  threads, and when it fires it returns ``False`` silently (a timeout becomes "incorrect", the
  silent all-zero-reward bug). We switch its timeouts off and put our own deadline around the
  whole grading: a ``BaseException`` its ``except Exception`` cannot swallow, so the verdict is
  `timeout`. In threads, `grade_math` hands the item to a worker process; batches go through
  `MathVerifier`, a `DeadlinePool` that kills a stuck worker (a C-level sympy loop ignores signals).
- **Known false positives caught.** Math-Verify compares equations by ``lhs - rhs``; two different
  equations that both reduce to ``0`` (``x+1=x+1`` vs ``x+2=x+2``, or a tautology ``0=0`` against a
  real equation) compare equal. `_false_positive_reason` rejects those.
- **Gold parsed once** per worker (an LRU cache) and the prediction parsed from a short snippet,
  not the whole trace: most of the speed-up over calling Math-Verify on raw completions.

>>> extract_final_answer("Thus x = 3, so the answer is \\\\boxed{\\\\frac{3}{4}}.")
'\\\\frac{3}{4}'
>>> grade_math("3/4", "<think>hmm</think>The final answer is $0.75$.").verdict
'correct'
>>> grade_math("3/4", "<think>still thinking, no end").details["reason"]
'think_not_closed'
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from dataengine.verify.pool import DeadlinePool
from dataengine.verify.result import VerifyResult
from filters.answer import extract_final_answer as _extract
from filters.answer import last_boxed_content, last_formula, last_phrase, last_sentence, locate_final_answer
from filters.split import THINK_FORMATS, split_completion

__all__ = [
    "MathOptions",
    "MathVerifier",
    "VerifyResult",
    "extract_final_answer",
    "grade_math",
    "math_equivalent",
]

DEFAULT_TIMEOUT_S = 5.0

@dataclass(frozen=True)
class MathOptions:
    """Math-Verify's comparison knobs (its test harness's names), fixed per verifier."""

    match_types: tuple[str, ...] = ("latex", "expr")
    float_rounding: int = 6
    strict: bool = True
    allow_set_relation_comp: bool = False
    # Our own false-positive checks; off only to reproduce the library's raw behaviour.
    false_positive_checks: bool = True


# --------------------------------------------------------------------------------------------
# Finding the final answer
# --------------------------------------------------------------------------------------------


class ThinkNotClosed(ValueError):
    """The completion's reasoning block never closed: there is no answer to grade."""


def answer_part(text: str) -> str:
    """The answer part of a completion (`filters.split.split_completion`: after the last closing
    marker); raises `ThinkNotClosed` for a think block that never closed."""
    sp = split_completion(text)
    if sp.think_closed is False:
        raise ThinkNotClosed(THINK_FORMATS[sp.think_format].open or sp.think_format)
    return sp.answer


def _trim(text: str) -> str:
    """What a worker needs of a completion: the answer part, or a marker that the think block
    never closed. Shipping 50 kB chains of thought through the pool's pipes would make the
    parent, not sympy, the bottleneck (a pipe holds 64 kB; a blocked send idles other workers)."""
    try:
        return answer_part(text)
    except ThinkNotClosed as e:
        return str(e)  # the open marker alone: graded as think_not_closed


# Extraction is `filters.answer` (shared with the format filter); these names are its call sites.
_last_boxed_content = last_boxed_content
_last_phrase = last_phrase
_last_formula = last_formula
# Math-Verify's own search (when ours finds nothing) sees at most this tail of the answer part.
_SEARCH_TAIL = 4000


def _locate(text: str) -> tuple[str, str, str] | None:
    """(answer, snippet for Math-Verify to parse, method), or None: let Math-Verify search."""
    got = locate_final_answer(text)
    return (got.answer, got.snippet, got.method) if got else None


def extract_final_answer(answer_text: str) -> str | None:
    """The final answer of a response: last ``\\boxed{}``, else "final answer is …", else the
    last formula; None when there is none or the think block never closed.

    >>> extract_final_answer("<think>maybe 5?</think>So $x=2$ and the final answer is 7.")
    '7'
    >>> extract_final_answer("<|begin_of_thought|>cut off") is None
    True
    """
    try:
        text = answer_part(answer_text)
    except ThinkNotClosed:
        return None
    return _extract(text)


# --------------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------------


class _Deadline(BaseException):
    """Raised by our alarm; a BaseException so Math-Verify's `except Exception` cannot eat it."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise _Deadline()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _quiet_math_verify() -> None:
    # Math-Verify warns on every disabled timeout and logs each parse failure; we report our own.
    for name in ("math_verify", "math_verify.grader", "math_verify.parser", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _targets(match_types: tuple[str, ...]) -> list[Any]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    out: list[Any] = []
    for mt in match_types:
        if mt == "latex":
            out.append(LatexExtractionConfig(boxed_match_priority=0))
        elif mt == "expr":
            out.append(ExprExtractionConfig())
        else:
            raise ValueError(f"unknown match type {mt!r}; known: latex, expr")
    return out


def _parse(text: str, match_types: tuple[str, ...]) -> list[Any]:
    from math_verify import parse

    return parse(text, _targets(match_types), parsing_timeout=None)  # type: ignore[arg-type]


# Notation Math-Verify cannot read, rewritten before parsing (gold and prediction alike): an
# escaped dollar is a currency sign (`\$36` is 36; the bare gold was unparseable, an `error`), and
# an ordinal suffix is not an exponent (`12^{\text{th}}` parsed as `12^{`, never equal to 12).
_CURRENCY = re.compile(r"\\\$\s*")
_ORDINAL = re.compile(r"(\d)\s*(?:\^\s*)?(?:\{\s*)?\\(?:text|mathrm|textrm|rm)\s*\{\s*(?:st|nd|rd|th)\s*\}(?:\s*\})?"
                      r"|(\d)\s*\^\s*\{\s*(?:st|nd|rd|th)\s*\}")


def _normalise_notation(s: str) -> str:
    r"""
    >>> _normalise_notation(r"\$32,\!348 and the 12^{\text{th}} and 21^{st}")
    '32,\\!348 and the 12 and 21'
    """
    if "\\" not in s and "^" not in s:
        return s
    return _ORDINAL.sub(lambda m: m.group(1) or m.group(2), _CURRENCY.sub("", s))


_LAYOUT = re.compile(r"\s+|\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\[!,;:]|\\quad|\\qquad|\$")


def _same_text(gold: str, answer: str | None) -> bool:
    r"""Two answers written the same up to layout (spaces, `\left`/`\right`, thin spaces, `\dfrac`).

    Used only where Math-Verify could not read one side as math (`\frac{1}{3}E_{1}+…` stays a
    string) and compares strings verbatim, so spacing alone made an identical answer incorrect.
    """
    if not answer:
        return False

    def norm(x: str) -> str:
        return _LAYOUT.sub("", re.sub(r"\\[dt]frac(?![a-zA-Z])", r"\\frac", _normalise_notation(x)))

    return norm(gold) == norm(answer)


@lru_cache(maxsize=4096)
def _parse_gold(gold: str, match_types: tuple[str, ...]) -> tuple[Any, ...]:
    """Gold answers repeat across the n samples of a prompt: parse each once per process.

    A bare gold (`3/4`, `\\frac{3}{4}`) is tried as math first, so LaTeX golds without `$` parse.
    """
    g = _normalise_notation(gold.strip())
    if not g:
        return ()
    attempts = [g] if ("$" in g or "\\boxed" in g) else ["$" + g + "$", g]
    for a in attempts:
        parsed = _parse(a, match_types)
        if parsed:
            return tuple(parsed)
    return ()


def _is_tautology(expr: Any) -> bool:
    import sympy

    if isinstance(expr, sympy.Eq) or (isinstance(expr, sympy.Basic) and expr is sympy.true):
        if expr is sympy.true:
            return True
        try:
            return sympy.simplify(expr.lhs - expr.rhs) == 0
        except Exception:  # noqa: BLE001 - undecidable: not a tautology we can prove
            return False
    return False


def _false_positive_reason(gold: Sequence[Any], pred: Sequence[Any]) -> str | None:
    """Equivalences Math-Verify accepts that are wrong (see the module docstring)."""
    import sympy

    g0 = next((g for g in gold if isinstance(g, sympy.Basic)), None)
    p0 = next((p for p in pred if isinstance(p, sympy.Basic)), None)
    if g0 is None or p0 is None:
        return None
    g_taut, p_taut = _is_tautology(g0), _is_tautology(p0)
    if p_taut and not g_taut:
        return "pred_equation_is_tautology"
    # Both reduce to 0 = 0: Math-Verify calls any two such equations equal; only the same
    # equation (up to spacing) is.
    both_eq = isinstance(g0, sympy.Eq) and isinstance(p0, sympy.Eq)
    if g_taut and p_taut and both_eq and sympy.srepr(g0) != sympy.srepr(p0):
        return "both_equations_reduce_to_zero"
    return None


def _unread(parsed: Sequence[Any]) -> bool:
    """Math-Verify kept only strings: it could not read the answer as math."""
    import sympy

    return not any(isinstance(p, sympy.Basic) for p in parsed)


def _answer_string(pred: Sequence[Any], located: str | None, method: str) -> str | None:
    if located is not None and method == "boxed":
        return located
    strs = [p for p in pred if isinstance(p, str)]
    return strs[-1] if strs else (str(pred[0]) if pred else None)


_CHOICE_GOLD = re.compile(r"^\(?([A-E])\)?$")


def _choice_letter(gold: str) -> str | None:
    """`(C)` / `C` as a gold answer: a multiple-choice problem inside a math set (MATH-500 has
    some); Math-Verify would compare `\\text{(C) Plane}` with `C` as symbols and fail."""
    g = re.sub(r"\\text(?:bf)?\{(.*?)\}", r"\1", gold.strip().strip("$")).strip()
    m = _CHOICE_GOLD.match(g)
    return m.group(1) if m else None


def _grade_choice(letter: str, text: str) -> VerifyResult:
    boxed = _last_boxed_content(text)
    phrase = _last_phrase(text)
    target = boxed or (phrase[2] if phrase else None) or _last_formula(text) or text
    t = re.sub(r"\\text(?:bf)?\{(.*?)\}", r"\1", target).strip()
    m = re.match(r"^\(?([A-E])\)?(?:\s|$|[.:])", t) or re.search(r"\(([A-E])\)", t)
    if m is None:
        return VerifyResult("unparseable", boxed, {"reason": "no_choice_found", "method": "choice_letter"})
    ok = m.group(1) == letter
    return VerifyResult("correct" if ok else "incorrect", m.group(1),
                        {"reason": "same_choice" if ok else "different_choice", "method": "choice_letter"})


def _grade_local(gold: str, answer_text: str, opts: MathOptions) -> VerifyResult:
    """Grade in this thread, without any deadline (the caller owns it)."""
    from math_verify import verify

    _quiet_math_verify()
    try:
        text = answer_part(answer_text)
    except ThinkNotClosed as e:
        return VerifyResult("unparseable", None, {"reason": "think_not_closed", "marker": str(e)})
    letter = _choice_letter(gold)
    if letter is not None:
        return _grade_choice(letter, text)
    gold_parsed = _parse_gold(gold, opts.match_types)
    if not gold_parsed:
        return VerifyResult("error", None, {"reason": "gold_unparseable", "gold": gold[:200]})
    located = _locate(text)
    pred: list[Any] = []
    method = "none"
    answer: str | None = None
    if located is not None:
        answer, snippet, method = located
        pred = _parse(_normalise_notation(snippet), opts.match_types)
    if not pred and answer is not None and not re.search(r"[\d\\$]", answer):
        # A stated answer in words ("the answer is a keyhole"): never an earlier number instead.
        return VerifyResult("unparseable", answer, {"reason": "answer_in_words", "method": method})
    if not pred and text.strip():
        # No box and no phrasing (or nothing Math-Verify can read in them): let it search the end
        # of the answer part itself; it takes the last formula or number, and knows units and
        # percentages. The last sentence first when it states its number in words ("is three").
        last = last_sentence(text)
        if not text.rstrip().endswith(last):
            pred = _parse(_normalise_notation(last), opts.match_types)
        if not pred:
            pred = _parse(_normalise_notation(text[-_SEARCH_TAIL:]), opts.match_types)
        method, answer = "last_formula", None
    if not pred:
        return VerifyResult("unparseable", answer, {"reason": "no_answer_found", "method": method})
    answer = _answer_string(pred, answer, method)
    ok = verify(
        list(gold_parsed),
        pred,
        float_rounding=opts.float_rounding,
        strict=opts.strict,
        allow_set_relation_comp=opts.allow_set_relation_comp,
        timeout_seconds=None,  # type: ignore[arg-type]
    )
    details: dict[str, Any] = {"method": method, "gold_parsed": str(gold_parsed[0])[:200]}
    if not ok and _unread(gold_parsed) and _same_text(gold, answer):
        return VerifyResult("correct", answer, {**details, "reason": "same_text"})
    if ok and opts.false_positive_checks:
        fp = _false_positive_reason(gold_parsed, pred)
        if fp is not None:
            return VerifyResult("incorrect", answer, {**details, "reason": fp})
    details["reason"] = "equivalent" if ok else "not_equivalent"
    return VerifyResult("correct" if ok else "incorrect", answer, details)


_warm = False


def _warm_up() -> None:
    """Import Math-Verify and build latex2sympy's parser once, outside any item's deadline."""
    global _warm
    if not _warm:
        _quiet_math_verify()
        _parse_gold("1", ("latex", "expr"))
        _warm = True


def _grade_with_deadline(gold: str, answer_text: str, opts: MathOptions, timeout_s: float) -> VerifyResult:
    _warm_up()
    try:
        with _deadline(timeout_s):
            return _grade_local(gold, answer_text, opts)
    except _Deadline:
        return VerifyResult("timeout", None, {"reason": "deadline_exceeded", "timeout_s": timeout_s})
    except RecursionError:
        return VerifyResult("error", None, {"reason": "recursion_error"})
    except Exception as e:  # noqa: BLE001 - an explicit error verdict, never a silent "incorrect"
        return VerifyResult("error", None, {"reason": "exception", "error": f"{type(e).__name__}: {e}"[:500]})


def _pool_init() -> None:
    """Import and warm Math-Verify (latex2sympy's grammar) before the worker takes items."""
    _warm_up()


def _pool_task(item: tuple[str, str, dict[str, Any], float]) -> tuple[str, str | None, dict[str, Any]]:
    """Runs in a `DeadlinePool` worker (main thread there, so signals work)."""
    gold, answer_text, opts_d, timeout_s = item
    opts = MathOptions(**{**opts_d, "match_types": tuple(opts_d["match_types"])})
    r = _grade_with_deadline(gold, answer_text, opts, timeout_s)
    return r.verdict, r.answer, r.details


_shared_pool: DeadlinePool | None = None
_shared_lock = threading.Lock()


def grade_math(
    gold: str,
    answer_text: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    options: MathOptions | None = None,
) -> VerifyResult:
    """Grade one response against a gold answer; safe to call from any thread.

    In the main thread it grades here under a signal deadline; in any other thread (a reward
    function inside a threaded trainer) it hands the item to a shared worker process, because
    signals only work in the main thread. Verdicts: correct / incorrect / unparseable / timeout /
    error, with `details["reason"]`.
    """
    opts = options or MathOptions()
    if threading.current_thread() is threading.main_thread():
        return _grade_with_deadline(gold, answer_text, opts, timeout_s)
    global _shared_pool
    with _shared_lock:
        if _shared_pool is None:
            _shared_pool = DeadlinePool(
                f"{__name__}:_pool_task", workers=1, deadline_s=timeout_s * 2 + 5, init_path=f"{__name__}:_pool_init"
            )
        out = _shared_pool.map([(gold, answer_text, _opts_dict(opts), timeout_s)])[0]
    return _from_outcome(out)


def math_equivalent(a: str, b: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Whether two final answers are equivalent (used to cluster answers for majority vote)."""
    return grade_math(a, "\\boxed{" + b + "}", timeout_s).verdict == "correct"


def _opts_dict(opts: MathOptions) -> dict[str, Any]:
    d = asdict(opts)
    d["match_types"] = list(opts.match_types)
    return d


def _from_outcome(out: Any) -> VerifyResult:
    if out.status == "ok":
        verdict, answer, details = out.value
        return VerifyResult(verdict, answer, details)
    if out.status == "timeout":
        return VerifyResult("timeout", None, {"reason": "worker_killed_after_deadline", "error": out.error})
    return VerifyResult("error", None, {"reason": "worker_error", "error": out.error})


@dataclass
class MathVerifier:
    """Batch grading on a pool of worker processes with a hard per-item deadline.

    >>> with MathVerifier(workers=2) as mv:                     # doctest: +SKIP
    ...     [r.verdict for r in mv.verify_batch([("2", "\\\\boxed{2}"), ("2", "\\\\boxed{3}")])]
    ['correct', 'incorrect']
    """

    workers: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_tasks_per_worker: int = 2000
    options: MathOptions = field(default_factory=MathOptions)
    _pool: DeadlinePool | None = field(default=None, init=False, repr=False)

    @property
    def pool(self) -> DeadlinePool:
        if self._pool is None:
            # The soft deadline (a signal inside the worker) fires first; the hard one (kill the
            # worker) only catches C code that never returns to the interpreter.
            self._pool = DeadlinePool(
                f"{__name__}:_pool_task",
                workers=self.workers,
                deadline_s=self.timeout_s * 2 + 2,
                max_tasks_per_worker=self.max_tasks_per_worker,
                init_path=f"{__name__}:_pool_init",
            )
        return self._pool

    def verify_batch(self, pairs: Sequence[tuple[str, str]]) -> list[VerifyResult]:
        """(gold, answer_text) pairs → one `VerifyResult` each, in order."""
        od = _opts_dict(self.options)
        # Same gold, same worker: the pool hands the items of one gold to one worker, which
        # parses that gold once (the n samples of a prompt share it).
        order = sorted(range(len(pairs)), key=lambda i: pairs[i][0])
        outs = self.pool.map([(pairs[i][0], _trim(pairs[i][1]), od, self.timeout_s) for i in order],
                             keys=[pairs[i][0] for i in order])
        results: list[VerifyResult | None] = [None] * len(pairs)
        for i, o in zip(order, outs):
            results[i] = _from_outcome(o)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> MathVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
