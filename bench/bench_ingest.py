"""Ingest: ours against DuckDB read_json on the same file, MB per CPU-second, same run.

Input (default): R1-length traces from the simulated engine (`SimulatedEngine(length="r1")`, the
JSONL `bench/bench_scale.py` ingests: prompt, completion, reference_answer, domain, model), or
with --real the real R1-distill/QwQ responses of ../shared/data repeated with distinct prompts.
0.1% of the rows are cut in half (invalid JSON), so quarantine is on. Ours runs in one process
and, as a second row, with 2 worker processes (what files over `parallel_min_bytes` get), their
fork server's and workers' CPU counted.

    python bench/bench_ingest.py --traces 4000      # ~82 MB of R1-length JSONL
    python bench/bench_ingest.py --real --mb 200

CPU-seconds are self + children (`resource.getrusage`); DuckDB's are its own threads. On a
shared machine compare the ratios of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

from _harness import SHARED_DATA, print_table, run_isolated
from bench_scale import make_input as make_r1_input

# One line: it is pasted into the indented step code of ours_run.
STOP_FORKSERVER = ("from multiprocessing import forkserver; "
                   "forkserver._forkserver._stop() if getattr(forkserver._forkserver, '_forkserver_pid', None) else None")

R1_MAPPING: dict[str, str] = {}  # the simulated file uses canonical field names
REAL_MAPPING = {"prompt": "question", "completion": "response", "reference_answer": "gold_answer", "model": "thinking_model"}


def make_real_input(path: Path, mb: int, seed: int = 0) -> int:
    src = SHARED_DATA / "traces" / "thinking_llms_interp" / "r1distill_qwq_benchmark_traces.jsonl"
    rows = [json.loads(x) for x in open(src)]
    rng = random.Random(seed)
    target = mb * 1_000_000
    written = n = 0
    with open(path, "w") as f:
        while written < target:
            r = dict(rng.choice(rows))
            r["question"] = f"[{n}] {r['question']}"
            line = json.dumps(r, ensure_ascii=False) + "\n"
            f.write(line)
            written += len(line.encode())
            n += 1
    return n


def break_rows(path: Path, every: int = 1000) -> int:
    """Cut every `every`-th line in half (invalid JSON); returns the number of lines.

    Streamed: a child process inherits this process's peak RSS (Linux keeps ru_maxrss across
    exec), so reading the whole file here made every step report ~3x the file size as its peak."""
    tmp = path.with_suffix(".broken")
    n = 0
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        for line in src:
            line = line.rstrip(b"\n")
            n += 1
            dst.write((line[: len(line) // 2] if n % every == 0 else line) + b"\n")
    tmp.replace(path)
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=4000, help="R1-length simulated traces")
    ap.add_argument("--real", action="store_true", help="real R1-distill/QwQ responses instead")
    ap.add_argument("--mb", type=int, default=200, help="with --real: file size")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        src = tmp / "traces.jsonl"
        if args.real:
            make_real_input(src, args.mb)
            mapping, what = REAL_MAPPING, "real R1-distill/QwQ trace"
        else:
            make_r1_input(src, args.traces)
            mapping, what = R1_MAPPING, "R1-length simulated trace"
        n = break_rows(src)
        size_mb = src.stat().st_size / 1e6

        duck = run_isolated(f"""
            import duckdb
            con = duckdb.connect({str(tmp / 'duck.duckdb')!r})
            T0, C0 = time.perf_counter(), _cpu()
            con.execute("create table t as select * from read_json({str(src)!r}, format='newline_delimited', ignore_errors=true)")
            RESULT["rows"] = con.execute("select count(*) from t").fetchone()[0]
            RESULT["seconds"] = time.perf_counter() - T0
            RESULT["cpu_seconds"] = _cpu() - C0
        """)
        # DuckDB into an in-memory table too: the upper bound of what a C++ reader does here.
        duck_mem = run_isolated(f"""
            import duckdb
            con = duckdb.connect()
            T0, C0 = time.perf_counter(), _cpu()
            con.execute("create table t as select * from read_json({str(src)!r}, format='newline_delimited', ignore_errors=true)")
            RESULT["rows"] = con.execute("select count(*) from t").fetchone()[0]
            RESULT["seconds"] = time.perf_counter() - T0
            RESULT["cpu_seconds"] = _cpu() - C0
        """)
        def ours_run(workers: int):  # type: ignore[no-untyped-def]
            # Workers fork from the process's fork server: it is stopped (and so reaped) before
            # the CPU is read, so its import and every worker's CPU-seconds count.
            return run_isolated(f"""
            from dataengine.ingest import IngestConfig, IngestOptions, ingest
            from dataengine.store import Workspace
            ws = Workspace.init({str(tmp / f'ws{workers}')!r})
            T0, C0 = time.perf_counter(), _cpu()
            rep = ingest(ws, {str(src)!r}, IngestOptions(mapping={mapping!r}, domain="math"),
                         IngestConfig(workers={workers}, parallel_min_bytes=0))
            RESULT["seconds"] = time.perf_counter() - T0
            {STOP_FORKSERVER}
            RESULT["cpu_seconds"] = _cpu() - C0
            RESULT.update(rows=rep.taken, quarantined=rep.quarantined, reconciles=rep.reconciles)
            """)

        ours, ours2 = ours_run(1), ours_run(2)
        for o in (ours, ours2):
            assert o.result["reconciles"] and o.result["rows"] + o.result["quarantined"] == n
        ours_mbs, duck_mbs = size_mb / ours.seconds, size_mb / duck.seconds
        duck_cpu = size_mb / duck.cpu_seconds
        print_table(
            f"ingest: {n:,} rows, {size_mb:,.0f} MB of {what} JSONL (0.1% bad rows); machine may be shared: "
            "compare the ratios",
            [
                ("dataengine MB per CPU-second (1 process)", f"{size_mb / ours.cpu_seconds:.1f}",
                 f"{(size_mb / ours.cpu_seconds) / duck_cpu:.2f}x DuckDB read_json (goal >= 0.5x)"),
                ("dataengine MB per CPU-second (2 workers)", f"{size_mb / ours2.cpu_seconds:.1f}",
                 f"{(size_mb / ours2.cpu_seconds) / duck_cpu:.2f}x DuckDB; wall time 1 process / 2 workers: {ours.seconds / ours2.seconds:.2f}"),
                ("DuckDB read_json MB per CPU-second", f"{duck_cpu:.1f}", "1.00x (peer, same run)"),
                ("dataengine CPU-seconds (1 process / 2 workers)", f"{ours.cpu_seconds:.2f} / {ours2.cpu_seconds:.2f}",
                 f"DuckDB {duck.cpu_seconds:.2f}; 2 workers cost {ours2.cpu_seconds / ours.cpu_seconds:.2f}x "
                 "the CPU of 1 process (goal ~1x)"),
                ("dataengine ingest MB/s wall (1 process)", f"{ours_mbs:.1f}", f"{ours_mbs / duck_mbs:.2f}x DuckDB read_json"),
                ("DuckDB read_json MB/s (table in a file)", f"{duck_mbs:.1f}", "1.00x (baseline)"),
                ("DuckDB read_json MB/s (in-memory table)", f"{size_mb / duck_mem.seconds:.1f}",
                 f"ours {ours_mbs / (size_mb / duck_mem.seconds):.2f}x of it"),
                ("dataengine rows/s", f"{ours.result['rows'] / ours.seconds:,.0f}", ""),
                ("dataengine peak RSS MB", f"{ours.peak_rss_mb:,.0f}", f"{ours.peak_rss_mb / duck.peak_rss_mb:.2f}x DuckDB"),
                ("DuckDB peak RSS MB", f"{duck.peak_rss_mb:,.0f}", ""),
                ("quarantined rows", f"{ours.result['quarantined']:,}", f"DuckDB loaded {duck.result['rows']:,} of {n:,} rows, no reasons"),
            ],
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
