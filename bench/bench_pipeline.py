"""The quickstart pipeline scaled up: wall time per stage, and Prefect's overhead around them.

`dataengine run` of examples/quickstart.yaml with --traces simulated traces (prompts x 4
samples), in a fresh workspace and a fresh interpreter. Per stage: wall time (from the `runs`
table), traces per second, and its share of the pipeline's wall time; the orchestration
overhead (flow wall time minus the stages, which includes the ephemeral API's start) is the peer
figure measured in the same run.

    python bench/bench_pipeline.py --traces 100000
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import yaml
from _harness import ROOT, print_table, run_isolated

NESTED = ("demo_prompts", "ingest_sft", "ingest")
STAGE_ORDER = ("prompts", "demo_prompts", "ingest_sft", "generate", "filter", "verify", "select", "dedup",
               "decontaminate", "mix", "export")


def make_config(path: Path, traces: int, reasoning_quota: int) -> None:
    cfg = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    n = cfg["generate"]["n"]
    cfg["run"]["demo_prompts"] = max(1, traces // n)
    cfg["run"]["non_reasoning"][0]["path"] = str(ROOT / "examples" / "non_reasoning_sample.jsonl")
    cfg["demo_prompts"]["benchmark_path"] = str(ROOT / "examples" / "demo_benchmark.jsonl")
    cfg["decontaminate"]["benchmarks"]["demo_benchmark"]["path"] = str(ROOT / "examples" / "demo_benchmark.jsonl")
    cfg["mix"]["reasoning"] = reasoning_quota
    cfg["generate"]["batch_size"] = 2048
    cfg["filter"]["processes"] = 2
    path.write_text(yaml.safe_dump(cfg))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--keep", action="store_true", help="keep the workspace")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        cfg = tmp / "pipeline.yaml"
        make_config(cfg, args.traces, reasoning_quota=args.traces // 2)
        ws = tmp / "ws"
        m = run_isolated(f"""
            import os, subprocess, sys
            os.environ["PREFECT_HOME"] = {str(tmp / "prefect")!r}
            T0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dataengine", "--workspace", {str(ws)!r}, "run", {str(cfg)!r}],
                           cwd={str(ROOT)!r}, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            RESULT["seconds"] = time.perf_counter() - T0
            RESULT["cli_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        """, timeout=4 * 3600)
        sys_path = str(ROOT)
        import sys

        sys.path.insert(0, sys_path)
        from dataengine.store import Workspace

        w = Workspace.open(ws)
        rows = w.query("""
            select stage, sum(date_diff('millisecond', started_at, ended_at)) / 1000.0 as s,
                   sum(count_in) as n_in, sum(count_out) as n_out
            from runs where status = 'ok' group by stage""").fetchall()
        traces = w.query("select count(*) from traces").fetchone()[0]
        total = m.seconds
        # demo_prompts, ingest_sft and ingest runs happen inside the `prompts` step: not added twice.
        stage_sum = sum(r[1] for r in rows if r[0] not in NESTED)
        table = []
        for stage, s, n_in, n_out in sorted(rows, key=lambda r: STAGE_ORDER.index(r[0]) if r[0] in STAGE_ORDER else 99):
            rate = f"{(n_in or 0) / s:,.0f} rows/s" if s and n_in else ""
            stage = f"  {stage} (inside prompts)" if stage in NESTED else stage
            table.append((f"{stage} ({n_in or 0:,} in, {n_out or 0:,} out) {rate}", f"{s:,.1f} s", f"{s / total:.1%} of the pipeline"))
        table.append(("all stages", f"{stage_sum:,.1f} s", f"{stage_sum / total:.1%} of the pipeline"))
        table.append(("Prefect orchestration (ephemeral API start, subflows, tasks, artifacts, report)",
                      f"{total - stage_sum:,.1f} s", f"{(total - stage_sum) / stage_sum:.2f}x the stages' time"))
        table.append(("pipeline wall time", f"{total:,.1f} s", f"{traces / total:,.0f} traces/s end to end"))
        print_table(f"dataengine run examples/quickstart.yaml scaled to {traces:,} simulated traces "
                    f"(peak RSS of the largest process {m.result['cli_rss_mb']:,.0f} MB)", table)
        out = ROOT / "bench" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_pipeline.json").write_text(json.dumps({"traces": traces, "seconds": total, "stages": rows}, default=str))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
