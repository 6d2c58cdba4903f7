"""Mix assembly and HF export of R1-length rows: wall time and peak RSS, against plain DuckDB.

Input (generated, not timed): a workspace whose `traces` hold --rows * 1.25 traces (80% reasoning
with think blocks whose length follows a lognormal of mean ~20 KB, cut from real R1-distill/QwQ
text; 20% non-reasoning SFT-like rows), 5% of reasoning traces left unclosed so qualification has
work to do. The mix asks for --rows rows (3:1 reasoning:non-reasoning, like 600k:200k).

Baselines, measured in the same run on the same store:
- mix: one DuckDB scan computing length(completion) over all traces (the floor of any SQL mix);
- export: DuckDB COPY of the same joined rows to one Parquet file (no messages, no card, no
  datasets/JSONL copies).

    python bench/bench_mix_export.py --rows 40000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

from _harness import SHARED_DATA, print_table, run_isolated


def make_pool(ws_dir: Path, rows: int, seed: int = 0) -> dict[str, float]:
    import numpy as np
    import pyarrow as pa

    from dataengine.records import content_hash
    from dataengine.store import Workspace

    src = SHARED_DATA / "traces" / "thinking_llms_interp" / "r1distill_qwq_benchmark_traces.jsonl"
    corpus = "\n\n".join(json.loads(x)["response"] for x in open(src, encoding="utf-8"))
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    ws = Workspace.init(ws_dir)
    total = int(rows * 1.25)
    n_reason = int(total * 0.8)
    domains = ["math", "code", "science", "logic"]
    categories = ["writing", "factual_qa", "translation", "self_cognition", "chat"]
    text_bytes = 0
    batch = 5000
    for start in range(0, total, batch):
        prompts, traces = [], []
        for i in range(start, min(total, start + batch)):
            reasoning_row = i < n_reason
            prompt = f"[{i}] Problem: {corpus[(i * 7919) % 100000:(i * 7919) % 100000 + 300]}"
            pid = content_hash("prompt", prompt)
            if reasoning_row:
                n = int(min(120_000, max(500, nrng.lognormal(mean=9.6, sigma=0.6))))  # mean ~ 20 KB
                off = rng.randrange(0, len(corpus) - n - 1)
                reasoning = corpus[off:off + n]
                closed = rng.random() > 0.05
                answer = "The answer is \\boxed{42}." if closed else ""
                completion = f"<think>\n{reasoning}\n</think>\n\n{answer}" if closed else f"<think>\n{reasoning}"
                meta = "{}"
                dom = domains[i % len(domains)]
            else:
                n = rng.randrange(200, 3000)
                off = rng.randrange(0, len(corpus) - n - 1)
                reasoning, answer, completion, closed = "", corpus[off:off + n], corpus[off:off + n], None
                dom = categories[i % len(categories)]
                meta = json.dumps({"bucket": "non_reasoning", "trivial": False})
            text_bytes += len(completion) * 2 + len(prompt)
            tid = content_hash("trace", pid, 0, "bench", "bench")
            prompts.append({"prompt_id": pid, "source": "bench", "domain": dom, "prompt": prompt, "metadata": meta})
            traces.append({"trace_id": tid, "prompt_id": pid, "sample_idx": 0, "model": "bench", "sampling_run": "bench",
                           "source": "bench", "domain": dom, "completion": completion, "reasoning": reasoning,
                           "answer": answer, "think_closed": closed, "think_format": "think" if reasoning_row else "none",
                           "finish_reason": "stop", "metadata": meta})
        ws.write_shard("prompts", pa.Table.from_pylist(prompts))
        ws.write_shard("traces", pa.Table.from_pylist(traces))
    return {"traces": total, "text_mb": text_bytes / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=40_000, help="rows in the mix (the goal is 800,000)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-mix-"))
    ws_dir, out_dir = tmp / "ws", tmp / "out"
    try:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        pool = make_pool(ws_dir, args.rows)
        r, nr = args.rows * 3 // 4, args.rows - args.rows * 3 // 4
        scan = run_isolated(f"""
            from dataengine.store import Workspace
            ws = Workspace.open({str(ws_dir)!r})
            T0 = time.perf_counter()
            RESULT["rows"] = ws.query("select count(*), sum(length(completion)) from traces").fetchone()[0]
            RESULT["seconds"] = time.perf_counter() - T0
        """)
        mix = run_isolated(f"""
            from dataengine.config import load_config_dict
            from dataengine.mix.assemble import run_mix
            from dataengine.store import Workspace
            ws = Workspace.open({str(ws_dir)!r})
            T0 = time.perf_counter()
            out = run_mix(ws, load_config_dict({{}}), reasoning={r}, non_reasoning={nr}, seed=1)
            RESULT["seconds"] = time.perf_counter() - T0
            RESULT.update(rows=out["rows"], mix_id=out["mix_id"], unfilled=out["unfilled"])
        """)
        assert mix.result["rows"] == args.rows, mix.result
        copy = run_isolated(f"""
            from dataengine.store import Workspace
            ws = Workspace.open({str(ws_dir)!r})
            con = ws.connect()
            T0 = time.perf_counter()
            con.execute("copy (select t.trace_id, p.prompt, t.reasoning, t.answer from mix_latest m "
                        "join traces t using (trace_id) join prompts p on p.prompt_id = t.prompt_id "
                        "order by m.position) to '{tmp / "copy.parquet"}' (format parquet, compression zstd)")
            RESULT["seconds"] = time.perf_counter() - T0
        """)
        steps = {}
        for label, formats in [("parquet", ["parquet"]), ("parquet+jsonl+datasets", ["parquet", "jsonl", "datasets"])]:
            shutil.rmtree(out_dir, ignore_errors=True)
            steps[label] = run_isolated(f"""
                from dataengine.config import load_config_dict
                from dataengine.mix.export import run_export
                from dataengine.store import Workspace
                ws = Workspace.open({str(ws_dir)!r})
                T0 = time.perf_counter()
                out = run_export(ws, load_config_dict({{}}), {str(out_dir)!r}, formats={formats!r}, test_fraction=0.01)
                RESULT["seconds"] = time.perf_counter() - T0
                RESULT["rows"] = out["total_rows"]
            """)
            assert steps[label].result["rows"] == args.rows
        out_mb = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file()) / 1e6
        full = steps["parquet+jsonl+datasets"]
        scale = 800_000 / args.rows
        total = mix.seconds + full.seconds
        print_table(
            f"mix + export: {args.rows:,} rows chosen from {pool['traces']:,} traces "
            f"({pool['text_mb']:,.0f} MB of completion text in the store); extrapolated x{scale:.0f} to 800k",
            [
                ("mix seconds", f"{mix.seconds:.1f}", f"{mix.seconds / scan.seconds:.2f}x one DuckDB scan of length(completion)"),
                ("DuckDB scan seconds (baseline)", f"{scan.seconds:.1f}", "1.00x"),
                ("mix peak RSS MB", f"{mix.peak_rss_mb:,.0f}", f"{mix.peak_rss_mb / scan.peak_rss_mb:.2f}x DuckDB scan"),
                ("export parquet-only seconds", f"{steps['parquet'].seconds:.1f}",
                 f"{steps['parquet'].seconds / copy.seconds:.2f}x DuckDB COPY to Parquet"),
                ("export all formats seconds", f"{full.seconds:.1f}", f"{full.seconds / copy.seconds:.2f}x DuckDB COPY"),
                ("DuckDB COPY seconds (baseline)", f"{copy.seconds:.1f}", "1.00x"),
                ("export all formats peak RSS MB", f"{full.peak_rss_mb:,.0f}",
                 f"{full.peak_rss_mb / copy.peak_rss_mb:.2f}x DuckDB COPY ({copy.peak_rss_mb:,.0f} MB)"),
                ("export parquet-only peak RSS MB", f"{steps['parquet'].peak_rss_mb:,.0f}", ""),
                ("export output MB (all formats)", f"{out_mb:,.0f}", ""),
                ("mix + export rows/s", f"{args.rows / total:,.0f}", ""),
                ("extrapolated 800k mix + export s", f"{total * scale:,.0f}", "goal 180 s (linear in rows)"),
                ("extrapolated 800k parquet-only s", f"{(mix.seconds + steps['parquet'].seconds) * scale:,.0f}", ""),
            ],
        )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
