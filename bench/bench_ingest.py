"""Ingest throughput (MB/s) and peak RSS, against DuckDB loading the same file with read_json.

Input: real reasoning traces (R1-distill and QwQ responses from ../shared/data) repeated with
distinct prompts until the file reaches --mb megabytes, plus 0.1% bad rows so quarantine is on.

    python bench/bench_ingest.py --mb 1000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

from _harness import SHARED_DATA, print_table, run_isolated


def make_input(path: Path, mb: int, seed: int = 0) -> int:
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
            if n % 1000 == 999:
                line = line[: len(line) // 2] + "\n"  # a truncated row: invalid JSON
            f.write(line)
            written += len(line.encode())
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=500)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        src = tmp / "traces.jsonl"
        n = make_input(src, args.mb)
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
        ours = run_isolated(f"""
            from dataengine.ingest import IngestOptions, ingest
            from dataengine.store import Workspace
            ws = Workspace.init({str(tmp / 'ws')!r})
            T0, C0 = time.perf_counter(), _cpu()
            rep = ingest(ws, {str(src)!r}, IngestOptions(mapping={{"prompt": "question", "completion": "response",
                         "reference_answer": "gold_answer", "model": "thinking_model"}}, think_format="prompt_opened"))
            RESULT["seconds"] = time.perf_counter() - T0
            RESULT["cpu_seconds"] = _cpu() - C0
            RESULT.update(rows=rep.taken, quarantined=rep.quarantined, reconciles=rep.reconciles)
        """)
        assert ours.result["reconciles"] and ours.result["rows"] + ours.result["quarantined"] == n
        ours_mbs, duck_mbs = size_mb / ours.seconds, size_mb / duck.seconds
        print_table(
            f"ingest: {n:,} rows, {size_mb:,.0f} MB of real trace JSONL (0.1% bad rows)",
            [
                ("dataengine ingest MB/s", f"{ours_mbs:.1f}", f"{ours_mbs / duck_mbs:.2f}x DuckDB read_json"),
                ("DuckDB read_json MB/s (table in a file)", f"{duck_mbs:.1f}", "1.00x (baseline)"),
                ("DuckDB read_json MB/s (in-memory table)", f"{size_mb / duck_mem.seconds:.1f}",
                 f"ours {ours_mbs / (size_mb / duck_mem.seconds):.2f}x of it"),
                ("dataengine MB per CPU-second", f"{size_mb / ours.cpu_seconds:.1f}",
                 f"{(size_mb / ours.cpu_seconds) / (size_mb / duck.cpu_seconds):.2f}x DuckDB ({size_mb / duck.cpu_seconds:.1f})"),
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
