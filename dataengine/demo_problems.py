"""Generated math problems with exactly computed answers, for dry runs and the simulated engine.

Every problem is written from a small set of sentence forms (arithmetic, algebra, counting) with
random numbers; its answer is computed exactly (integers and `Fraction`s, never floats), and the
worked steps used by the simulated engine come with it. `solve(text)` recognises a problem in any
text (a rendered few-shot prompt, an HTTP request body) and recomputes it, so the simulated engine
needs nothing but the prompt text.

>>> p = make_problem(random.Random(0), "algebra_linear")
>>> solve(p.text).answer == p.answer
True
>>> solve("Solve for x: 3x + 7 = 22.").answer
'5'

Benchmark-contaminated prompts (planted so decontamination can be measured) are read at run time
from a benchmark file (MATH-500 JSONL, field `problem`), or, without one, from the few
benchmark-like prompts written for this project in `DEMO_BENCHMARK`.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from dataengine.records import Prompt


@dataclass(frozen=True)
class Problem:
    kind: str
    text: str
    answer: str
    # Worked steps in plain English, each a sentence or two; the simulated engine expands them.
    steps: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)


def fmt(q: Fraction | int) -> str:
    """An exact answer as text: `5`, `-3`, `7/2`."""
    q = Fraction(q)
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


# ------------------------------------------------------------------------------------------------
# Problem forms: each has a maker (random numbers -> Problem) and a solver (regex match -> Problem).
# The regexes accept exactly the text the makers write, so solve(make(...).text) round-trips.
# ------------------------------------------------------------------------------------------------


def _arith(a: int, b: int, c: int) -> Problem:
    prod = a * b
    ans = prod + c
    text = f"Compute {a} \u00d7 {b} + {c}."
    steps = (
        f"The expression is {a} \u00d7 {b} + {c}, and multiplication comes before addition.",
        f"First the product: {a} \u00d7 {b}. Split it as {a} \u00d7 {b // 10 * 10} + {a} \u00d7 {b % 10} "
        f"= {a * (b // 10 * 10)} + {a * (b % 10)} = {prod}.",
        f"Then add {c}: {prod} + {c} = {ans}.",
        f"Check by estimating: {a} \u00d7 {b} is close to {round(a, -1) or a} \u00d7 {round(b, -1) or b}, "
        f"so {prod} is the right size, and the last digit of {prod} + {c} is {ans % 10}.",
    )
    return Problem("arithmetic", text, fmt(ans), steps, {"a": a, "b": b, "c": c})


def _linear(a: int, b: int, c: int) -> Problem:
    x = Fraction(c - b, a)
    sign = "+" if b >= 0 else "-"
    text = f"Solve for x: {a}x {sign} {abs(b)} = {c}."
    steps = (
        f"We need x with {a}x {sign} {abs(b)} = {c}.",
        f"Move the constant to the right-hand side: {a}x = {c} {'-' if b >= 0 else '+'} {abs(b)} = {c - b}.",
        f"Divide both sides by {a}: x = {c - b}/{a} = {fmt(x)}.",
        f"Verify: {a} \u00b7 {fmt(x)} {sign} {abs(b)} = {fmt(a * x)} {sign} {abs(b)} = {fmt(a * x + b)}, "
        f"which equals {c}.",
    )
    return Problem("algebra_linear", text, fmt(x), steps, {"a": a, "b": b, "c": c})


def _quadratic(r1: int, r2: int) -> Problem:
    s, p = r1 + r2, r1 * r2
    s_part = f"- {s}x" if s >= 0 else f"+ {-s}x"
    p_part = f"+ {p}" if p >= 0 else f"- {-p}"
    text = f"Find the larger root of x^2 {s_part} {p_part} = 0."
    hi = max(r1, r2)
    steps = (
        f"The equation is x^2 {s_part} {p_part} = 0, a monic quadratic.",
        f"Look for two numbers whose sum is {s} and whose product is {p}: {r1} and {r2} work, "
        f"since {r1} + {r2} = {s} and {r1} \u00b7 {r2} = {p}.",
        f"So the quadratic factors as (x - {r1})(x - {r2}) = 0 and the roots are {r1} and {r2}.",
        f"Verify the larger one, x = {hi}: ({hi})^2 - ({s})({hi}) + ({p}) = {hi * hi - s * hi + p}.",
        f"The larger root is {hi}.",
    )
    return Problem("algebra_quadratic", text, fmt(hi), steps, {"r1": r1, "r2": r2})


def _choose(n: int, k: int) -> Problem:
    ans = math.comb(n, k)
    text = f"How many ways are there to choose a committee of {k} people from a group of {n} people?"
    num = " \u00d7 ".join(str(n - i) for i in range(k))
    den = " \u00d7 ".join(str(i) for i in range(k, 0, -1))
    steps = (
        f"Order does not matter in a committee, so this is C({n}, {k}).",
        f"C({n}, {k}) = ({num}) / ({den}).",
        f"The numerator is {math.perm(n, k)} and the denominator is {math.factorial(k)}, "
        f"so the count is {math.perm(n, k)} / {math.factorial(k)} = {ans}.",
        f"Check with symmetry: C({n}, {n - k}) must give the same number, and it does: {math.comb(n, n - k)}.",
    )
    return Problem("counting_choose", text, fmt(ans), steps, {"n": n, "k": k})


def _divisible(big_n: int, a: int, b: int) -> Problem:
    lcm = a * b // math.gcd(a, b)
    na, nb, nab = big_n // a, big_n // b, big_n // lcm
    ans = na + nb - nab
    text = f"How many positive integers less than or equal to {big_n} are divisible by {a} or {b}?"
    steps = (
        "Use inclusion-exclusion: count multiples of each number, then subtract the overlap.",
        f"Multiples of {a} up to {big_n}: floor({big_n}/{a}) = {na}. Multiples of {b}: floor({big_n}/{b}) = {nb}.",
        f"Numbers divisible by both are multiples of lcm({a}, {b}) = {lcm}: floor({big_n}/{lcm}) = {nab}.",
        f"Total: {na} + {nb} - {nab} = {ans}.",
    )
    return Problem("counting_divisible", text, fmt(ans), steps, {"N": big_n, "a": a, "b": b})


def _make_arith(rng: random.Random) -> Problem:
    return _arith(rng.randint(12, 99), rng.randint(12, 99), rng.randint(1, 999))


def _make_linear(rng: random.Random) -> Problem:
    return _linear(rng.choice([i for i in range(-12, 13) if i not in (0, 1)]), rng.randint(-50, 50), rng.randint(-60, 60))


def _make_quadratic(rng: random.Random) -> Problem:
    r1, r2 = rng.randint(-15, 15), rng.randint(-15, 15)
    return _quadratic(r1, r2)


def _make_choose(rng: random.Random) -> Problem:
    n = rng.randint(5, 20)
    return _choose(n, rng.randint(2, min(6, n - 1)))


def _make_divisible(rng: random.Random) -> Problem:
    a = rng.randint(2, 12)
    b = rng.choice([x for x in range(2, 15) if x != a])
    return _divisible(rng.randint(50, 2000), a, b)


MAKERS: dict[str, Callable[[random.Random], Problem]] = {
    "arithmetic": _make_arith,
    "algebra_linear": _make_linear,
    "algebra_quadratic": _make_quadratic,
    "counting_choose": _make_choose,
    "counting_divisible": _make_divisible,
}

_INT = r"(-?\d+)"
_SOLVERS: list[tuple[re.Pattern[str], Callable[..., Problem]]] = [
    (re.compile(rf"Compute {_INT} \u00d7 {_INT} \+ {_INT}\."), lambda a, b, c: _arith(int(a), int(b), int(c))),
    (re.compile(rf"Solve for x: {_INT}x ([+-]) (\d+) = {_INT}\."),
     lambda a, s, b, c: _linear(int(a), int(b) if s == "+" else -int(b), int(c))),
    (re.compile(r"Find the larger root of x\^2 ([+-]) (\d+)x ([+-]) (\d+) = 0\."), None),  # type: ignore[list-item]
    (re.compile(rf"choose a committee of {_INT} people from a group of {_INT} people\?"),
     lambda k, n: _choose(int(n), int(k))),
    (re.compile(rf"less than or equal to {_INT} are divisible by {_INT} or {_INT}\?"),
     lambda n, a, b: _divisible(int(n), int(a), int(b))),
]


def _solve_quadratic(ss: str, s: str, ps: str, p: str) -> Problem | None:
    total = int(s) if ss == "-" else -int(s)
    prod = int(p) if ps == "+" else -int(p)
    disc = total * total - 4 * prod
    if disc < 0 or math.isqrt(disc) ** 2 != disc or (total + math.isqrt(disc)) % 2:
        return None
    r = math.isqrt(disc)
    return _quadratic((total + r) // 2, (total - r) // 2)


def make_problem(rng: random.Random, kind: str | None = None) -> Problem:
    """One problem of `kind` (random kind when None)."""
    kind = kind or rng.choice(sorted(MAKERS))
    try:
        return MAKERS[kind](rng)
    except KeyError:
        raise ValueError(f"unknown problem kind {kind!r}; known: {', '.join(sorted(MAKERS))}") from None


def solve(text: str) -> Problem | None:
    """The last generated problem found in `text`, recomputed; None when there is none.

    The last one, because a few-shot prompt shows its exemplar before the problem to solve.
    """
    best: tuple[int, Problem] | None = None
    for pattern, build in _SOLVERS:
        for m in pattern.finditer(text):
            prob = _solve_quadratic(*m.groups()) if build is None else build(*m.groups())
            if prob is not None and (best is None or m.start() >= best[0]):
                best = (m.start(), prob)
    return best[1] if best else None


# ------------------------------------------------------------------------------------------------
# Benchmark-like prompts (contamination planting)
# ------------------------------------------------------------------------------------------------

# Written for this project in the style of competition benchmarks; used only when no benchmark file
# is configured, so the demo still has contaminated prompts to find.
DEMO_BENCHMARK: tuple[tuple[str, str], ...] = (
    ("Let $f(x) = 3x^2 - 5x + 2$. What is the value of $f(4)$?", "30"),
    ("A bag holds 4 red and 6 blue marbles. Two are drawn without replacement. "
     "What is the probability that both are red? Express your answer as a common fraction.", "2/15"),
    ("What is the smallest positive integer $n$ such that $n^2$ ends in the digits 44?", "12"),
    ("Find the sum of all positive divisors of 60.", "168"),
    ("The arithmetic sequence 7, 11, 15, ... has how many terms less than 200?", "49"),
    ("In how many ways can the letters of the word LEVEL be arranged?", "30"),
    ("What is the remainder when $2^{20}$ is divided by 7?", "4"),
    ("A rectangle has perimeter 46 and diagonal 17. What is its area?", "120"),
)


@dataclass(frozen=True)
class BenchmarkItem:
    benchmark: str
    text: str
    answer: str | None


def load_benchmark(path: str | Path | None) -> list[BenchmarkItem]:
    """Benchmark problems to plant: a JSONL file with `problem` (or `question`/`prompt`) and
    `answer` fields (MATH-500 works as is), or the project's `DEMO_BENCHMARK` when `path` is None."""
    if path is None:
        return [BenchmarkItem("demo_benchmark", t, a) for t, a in DEMO_BENCHMARK]
    p = Path(path)
    items = []
    with p.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{line_no}: invalid JSON ({e.msg})") from None
            text = row.get("problem") or row.get("question") or row.get("prompt")
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{p}:{line_no}: no problem/question/prompt text field")
            ans = row.get("answer", row.get("expected_answer"))
            items.append(BenchmarkItem(p.stem, text, None if ans is None else str(ans)))
    if not items:
        raise ValueError(f"{p}: no benchmark problems in the file")
    return items


def demo_prompts(
    count: int,
    seed: int = 0,
    kinds: list[str] | None = None,
    contaminated_rate: float = 0.0,
    benchmark: list[BenchmarkItem] | None = None,
) -> Iterator[Prompt]:
    """`count` distinct prompts: generated problems, and benchmark problems at `contaminated_rate`.

    Contaminated prompts carry `metadata.planted_defects = ["benchmark_contaminated"]` and the
    benchmark name, so decontamination recall can be measured against them.
    """
    rng = random.Random(seed)
    kinds = kinds or sorted(MAKERS)
    bench = list(benchmark or [])
    seen: set[str] = set()
    attempts = 0
    while len(seen) < count:
        attempts += 1
        if attempts > count * 50 + 1000:
            raise ValueError(f"could not generate {count} distinct prompts (the number ranges are too small)")
        if bench and rng.random() < contaminated_rate:
            item = bench[rng.randrange(len(bench))]
            prompt = Prompt(
                item.text, source="demo", domain="math", language="en", reference_answer=item.answer,
                metadata={"generator": "demo", "kind": "benchmark", "benchmark": item.benchmark,
                          "planted_defects": ["benchmark_contaminated"]},
            )
        else:
            prob = make_problem(rng, rng.choice(kinds))
            prompt = Prompt(
                prob.text, source="demo", domain="math", language="en", reference_answer=prob.answer,
                metadata={"generator": "demo", "kind": prob.kind, "params": prob.params, "planted_defects": []},
            )
        if prompt.prompt_id in seen:
            continue
        seen.add(prompt.prompt_id)
        yield prompt
