"""Verification throughput: math verifications/s against Math-Verify called directly, scaling from
one to two workers; and code verification (HumanEval programs/s, CPU-seconds per program) before vs
after the isolated sandbox with its judged harness, against a plain unsandboxed `python3` run.

Pairs: the long Sky-T1 traces (AIME/AMC chains of thought of 10-60k characters) with their golds,
every pair distinct: past the 140 real pairs, variant k of a pair adds k to its gold and to the
last boxed answer of its completion (`unique_pairs`), so no parse or sympy result is reused from
a cache the way repeated pairs were (which inflated both sides' rates).
Math-Verify direct = what a reward function usually does: `verify(parse(gold), parse(completion))`
in one process, on the whole completion. Ours = `MathVerifier(workers=n).verify_batch(pairs)`
(final answer extracted from the answer part first, each gold parsed once per worker, process pool
with deadlines). Pools are started and warmed before the clock starts.

    python bench/bench_verify.py --pairs 4000 --source r1 --code-programs 164
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

from _harness import ROOT, SHARED_DATA, print_table, run_isolated

FILES = (
    "aime24__Sky-T1-math-correct-5K-32B-ckpt140.jsonl",
    "aime24__Sky-T1-math-reflection-1.0-32B.jsonl",
    "amc23__Sky-T1-math-correct-5K-14B.jsonl",
    "amc23__Sky-T1-math-corrupt-0.5-32B.jsonl",
)


# Golds that stay one expression with "+k" appended (no sets, tuples, intervals, text, relations).
_SCALAR_GOLD = re.compile(r"^[^,=()\[\]]+$")


def _last_boxed(text: str) -> tuple[int, int] | None:
    """(start, end) of the content of the last \\boxed{...} in `text`, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i = start + len("\\boxed{")
    depth = 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return i, j
    return None


def unique_pairs(base: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    """`n` distinct (gold, completion) pairs: the real ones, then variant k = 1, 2, … of each
    scalar-gold pair with k added to its gold and to its last boxed answer (equivalence kept)."""
    pairs = list(dict.fromkeys(base))[:n]
    # A completion with no boxed answer (cut off, or answered in words) keeps its text: its gold
    # alone varies, so it still costs what it costs for real (usually an unparseable verdict).
    varying = [(g, c, _last_boxed(c)) for g, c in pairs if _SCALAR_GOLD.match(g) and "\\text" not in g]
    k = 0
    while len(pairs) < n and varying:
        k += 1
        for g, c, box in varying:
            if len(pairs) == n:
                break
            if box is None:
                pairs.append((f"{g}+{k}", c))
            else:
                i, j = box
                pairs.append((f"{g}+{k}", f"{c[:i]}{c[i:j]}+{k}{c[j:]}"))
    if len(pairs) < n:
        raise ValueError(f"only {len(pairs)} distinct pairs can be made from these traces")
    return pairs


def r1_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` distinct (gold, completion) pairs of simulated R1-length math traces (the simulated
    engine with length="r1": reasoning lengths fitted to the real traces, 4 samples a problem)."""
    import sys

    sys.path.insert(0, str(ROOT))
    from dataengine.demo_problems import demo_prompts
    from dataengine.engines.base import GenerationRequest, SamplingParams
    from dataengine.engines.simulated import SimulatedEngine

    eng = SimulatedEngine(model="simulated-r1", seed=seed, length="r1")
    params = SamplingParams(n=4, max_tokens=1 << 20)
    pairs: dict[tuple[str, str], None] = {}
    for p in demo_prompts(n, seed=seed):
        res = eng.generate([GenerationRequest(p.prompt_id, prompt=p.prompt, params=params,
                                              metadata={"reference_answer": p.reference_answer})])[0]
        for c in res.completions:
            pairs[(p.reference_answer, c.text)] = None
        if len(pairs) >= n:
            break
    return unique_pairs(list(pairs), n)


def make_pairs(path: Path, n: int, source: str = "sky") -> int:
    if source == "r1":
        pairs = r1_pairs(n)
    else:
        base = []
        for name in FILES:
            for line in open(SHARED_DATA / "traces" / "sky_t1" / name, encoding="utf-8"):
                r = json.loads(line)
                base += [(r["gt"], c) for c in r["code"]]
        pairs = unique_pairs(base, n)
    assert len(set(pairs)) == len(pairs) == n
    path.write_text(json.dumps(pairs))
    return sum(len(c) for _, c in pairs) // max(1, len(pairs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=4000, help="distinct (gold, completion) pairs for our verifier")
    ap.add_argument("--source", choices=("r1", "sky"), default="r1",
                    help="r1: simulated R1-length math traces; sky: real Sky-T1 AIME/AMC traces (+ variants)")
    ap.add_argument("--peer-pairs", type=int, default=300, help="the first N of the same pairs for Math-Verify (slow)")
    ap.add_argument("--code-programs", type=int, default=164, help="HumanEval programs for the code part (0: skip it)")
    ap.add_argument("--code-parallel", type=int, default=2)
    ap.add_argument("--code-before", default=CODE_BEFORE, help="git revision of the verifier to compare against")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    pairs_path = tmp / "pairs.json"
    mean_chars = make_pairs(pairs_path, args.pairs, args.source)
    k = min(args.peer_pairs, args.pairs)

    direct = run_isolated(f"""
        import logging
        from math_verify import parse, verify
        logging.getLogger("math_verify").setLevel(logging.CRITICAL)
        pairs = json.load(open({str(pairs_path)!r}))[:{k}]
        verify(parse("$1$"), parse("$1$"))  # warm latex2sympy
        T0, C0 = time.perf_counter(), time.process_time()
        ok = sum(bool(verify(parse(g), parse(c))) for g, c in pairs)
        RESULT["seconds"] = time.perf_counter() - T0
        RESULT["cpu_seconds"] = time.process_time() - C0
        RESULT["correct"] = ok
    """)

    def ours(workers: int) -> dict:
        return run_isolated(f"""
            from dataengine.verify.math import MathVerifier
            pairs = [tuple(p) for p in json.load(open({str(pairs_path)!r}))]
            with MathVerifier(workers={workers}) as mv:
                mv.verify_batch([("1", "\\\\boxed{{1}}")] * {workers} * 2)  # start and warm the workers
                # the pool counts its workers' CPU, recycled ones included (they are not our children)
                T0, C0, W0 = time.perf_counter(), time.process_time(), mv.pool.cpu_seconds()
                res = mv.verify_batch(pairs)
                RESULT["seconds"] = time.perf_counter() - T0
                RESULT["parent_cpu"] = time.process_time() - C0
                RESULT["worker_cpu"] = mv.pool.cpu_seconds() - W0
                RESULT["cpu_seconds"] = RESULT["parent_cpu"] + RESULT["worker_cpu"]
                RESULT["stats"] = mv.pool.stats
            RESULT["correct"] = sum(r.verdict == "correct" for r in res)
            RESULT["verdicts"] = {{v: sum(r.verdict == v for r in res) for v in {{r.verdict for r in res}}}}
        """).result

    one, two = ours(1), ours(2)
    n = args.pairs
    rate_direct = k / direct.seconds
    rate1, rate2 = n / one["seconds"], n / two["seconds"]
    cpu_direct, cpu1, cpu2 = k / direct.result["cpu_seconds"], n / one["cpu_seconds"], n / two["cpu_seconds"]
    load = os.getloadavg()[0]

    cores = os.cpu_count()
    what = "simulated R1-length" if args.source == "r1" else "Sky-T1"
    print_table(
        f"verify: {n} distinct {what} math pairs (mean {mean_chars:,} chars per completion), Math-Verify on the first {k}; "
        f"{cores} cores, load average {load:.1f} (wall ratios need a quiet machine)",
        [
            ("Math-Verify direct, 1 process (pairs/s)", f"{rate_direct:.1f}", f"baseline ({direct.result['correct']}/{k} correct)"),
            ("Math-Verify direct (pairs per CPU-second)", f"{cpu_direct:.1f}", "baseline"),
            ("ours, 1 worker (pairs per CPU-second, parent + worker)", f"{cpu1:.1f}",
             f"{cpu1 / cpu_direct:.1f}x Math-Verify per core; goal >= 400: {'met' if cpu1 >= 400 else 'NOT MET'}"),
            ("ours, 1 worker: wall s / parent CPU-s / worker CPU-s", f"{one['seconds']:.1f} / {one['parent_cpu']:.1f} / {one['worker_cpu']:.1f}",
             f"{rate1:.1f} pairs/s = {rate1 / rate_direct:.1f}x Math-Verify wall ({one['correct']} correct)"),
            ("ours, 2 workers: wall s / parent CPU-s / worker CPU-s", f"{two['seconds']:.1f} / {two['parent_cpu']:.1f} / {two['worker_cpu']:.1f}",
             f"{rate2:.1f} pairs/s; recycled workers {two['stats']['recycled']}"),
            ("2nd worker: wall speed-up (1 -> 2 workers)", f"{rate2 / rate1:.2f}x",
             f"goal >= 1.8x: {'met' if rate2 / rate1 >= 1.8 else 'NOT MET'} (needs 2 idle cores)"),
            ("2nd worker: pairs per CPU-second, 2 vs 1 worker", f"{cpu2 / cpu1:.2f}x",
             "1.0 = no extra work per pair from a 2nd worker"),
        ],
    )
    print(f"our verdicts (1 worker): {one['verdicts']}; 2 workers: {two['verdicts']}")
    if args.code_programs:
        code_bench(args.code_programs, args.code_parallel, tmp, args.code_before)


# --------------------------------------------------------------------------------- code
# The verifier as it was before the judged harness and the per-run cgroup/root/seccomp sandbox
# (issue 13), run from git beside the current one on the same programs in the same run.
CODE_BEFORE = "210de2d"


def code_bench(n: int, parallel: int, tmp: Path, before_rev: str) -> None:
    """HumanEval canonical solutions: programs/s and CPU-seconds per program (all processes, the
    sandbox's included), before vs after, and a plain unsandboxed `python3` run as the floor."""
    old = tmp / "verify_before"
    old.mkdir()
    (old / "__init__.py").write_text("")
    for name in ("sandbox", "code"):
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{before_rev}:dataengine/verify/{name}.py"],
                             capture_output=True, text=True, check=True).stdout
        (old / f"{name}.py").write_text(src.replace("from dataengine.verify.sandbox import", "from verify_before.sandbox import"))
    he = SHARED_DATA / "code" / "HumanEval.jsonl"

    def step(module: str) -> dict:
        return run_isolated(f"""
            sys.path.insert(0, {str(tmp)!r})
            from concurrent.futures import ThreadPoolExecutor
            from {module}.code import verify_code
            from {module}.sandbox import Limits, Sandbox
            ps = [json.loads(line) for line in open({str(he)!r})][:{n}]
            sb = Sandbox(Limits(wall_s=120, cpu_s=20))
            grade = lambda p: verify_code("```python\\n" + p["prompt"] + p["canonical_solution"] + "\\n```", p["test"],
                                          entry_point=p["entry_point"], sandbox=sb).verdict
            grade(ps[0])  # the isolation probe and first imports, outside the clock
            T0, C0 = time.perf_counter(), _cpu()
            with ThreadPoolExecutor({parallel}) as ex:
                verdicts = list(ex.map(grade, ps))
            RESULT["seconds"], RESULT["cpu_seconds"] = time.perf_counter() - T0, _cpu() - C0
            RESULT["correct"] = verdicts.count("correct")
        """).result

    plain = run_isolated(f"""
        import subprocess, tempfile, os
        from concurrent.futures import ThreadPoolExecutor
        ps = [json.loads(line) for line in open({str(he)!r})][:{n}]
        d = tempfile.mkdtemp()
        def run(ip):
            i, p = ip
            path = os.path.join(d, f"p{{i}}.py")
            open(path, "w").write(p["prompt"] + p["canonical_solution"] + "\\n" + p["test"] + f"\\ncheck({{p['entry_point']}})\\n")
            return subprocess.run(["/usr/bin/python3", "-I", path], capture_output=True, timeout=120).returncode == 0
        T0, C0 = time.perf_counter(), _cpu()
        with ThreadPoolExecutor({parallel}) as ex:
            ok = list(ex.map(run, enumerate(ps)))
        RESULT["seconds"], RESULT["cpu_seconds"] = time.perf_counter() - T0, _cpu() - C0
        RESULT["correct"] = sum(ok)
    """).result
    before, after = step("verify_before"), step("dataengine.verify")
    rate = {k: n / v["seconds"] for k, v in (("plain", plain), ("before", before), ("after", after))}
    cpu = {k: v["cpu_seconds"] / n for k, v in (("plain", plain), ("before", before), ("after", after))}
    print_table(
        f"code verify: {n} HumanEval canonical solutions, {parallel} at a time, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} (a shared machine: compare within this table only)",
        [
            ("plain python3, no sandbox, no verifier (programs/s)", f"{rate['plain']:.2f}", f"floor ({plain['correct']} pass)"),
            ("before: old sandbox + in-process harness (programs/s)", f"{rate['before']:.2f}",
             f"baseline ({before['correct']} correct)"),
            ("after: judged harness in the isolated sandbox (programs/s)", f"{rate['after']:.2f}",
             f"{rate['after'] / rate['before']:.2f}x before ({after['correct']} correct)"),
            ("plain: CPU-seconds per program", f"{cpu['plain']:.3f}", "floor"),
            ("before: CPU-seconds per program", f"{cpu['before']:.3f}", f"+{cpu['before'] - cpu['plain']:.3f} over plain"),
            ("after: CPU-seconds per program", f"{cpu['after']:.3f}",
             f"+{cpu['after'] - cpu['plain']:.3f} over plain (isolation + judge); {cpu['after'] / cpu['before']:.2f}x before"),
        ],
    )


if __name__ == "__main__":
    main()
