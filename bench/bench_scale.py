"""R1 scale: every stage on N R1-length traces, per stage against its peer and the issue's goals.

Input (generated, not timed): N traces from the simulated engine with `length="r1"` (reasoning
lengths drawn from `engines.simulated.R1_LENGTH`: spread fitted to the real traces in
../shared/data/traces, mean ~20 KB like R1's SFT set), 4 samples per generated math problem,
default planted defects, written as one JSONL file.

Stages, each in a fresh interpreter on the same workspace, in pipeline order: ingest, filter,
verify (math, 2 workers), select, dedup, mix, export (Parquet + JSONL + datasets). Per stage:
wall time, CPU-seconds (the stage and its worker processes), MB of completion text per
CPU-second, peak RSS, the peer's figure from the same run where there is one (DuckDB read_json
for ingest, Math-Verify for verify, datasketch for dedup, DuckDB COPY for export), and the 800k
extrapolation (CPU-seconds x 800k/N spread over 2 cores, what a quiet 2-core machine would take;
export: its fixed cost, measured on a 20-row mix, plus its per-row cost x 800k rows). Then each goal of issue 15 with met / not met.
Extrapolation is linear and, but for the export, counts fixed costs (imports, pool start) 800k/N
times: use N >= 10,000 for figures that mean something.

    python bench/bench_scale.py --traces 2000

The machine this runs on may be shared: CPU-seconds and same-run ratios are the figures to
compare; wall times are only good on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

from _harness import ROOT, kernel_note, print_table, run_isolated

TARGET = 800_000
CORES = 2
# Workers of the verify pool fork from a fork server, not from the stage: stopping the server
# reaps them into the stage's RUSAGE_CHILDREN, so their CPU time is counted.
STOP_FORKSERVER = """
from multiprocessing import forkserver
if getattr(forkserver._forkserver, "_forkserver_pid", None) is not None:
    forkserver._forkserver._stop()
"""


def make_input(path: Path, n: int, seed: int = 0) -> dict[str, float]:
    """N simulated R1-length traces as JSONL (prompt, completion, reference_answer, domain, model)."""
    sys.path.insert(0, str(ROOT))
    from dataengine.demo_problems import demo_prompts
    from dataengine.engines.base import GenerationRequest, SamplingParams
    from dataengine.engines.simulated import SimulatedEngine

    eng = SimulatedEngine(model="simulated-r1", seed=seed, length="r1")
    per = 4
    params = SamplingParams(n=per, max_tokens=1 << 20)
    written = chars = 0
    with open(path, "w", encoding="utf-8") as f:
        for p in demo_prompts(-(-n // per), seed=seed):
            res = eng.generate([GenerationRequest(p.prompt_id, prompt=p.prompt, params=params,
                                                  metadata={"reference_answer": p.reference_answer})])[0]
            for c in res.completions[: n - written]:
                f.write(json.dumps({"prompt": p.prompt, "completion": c.text, "reference_answer": p.reference_answer,
                                    "domain": "math", "model": "simulated-r1", "finish_reason": c.finish_reason},
                                   ensure_ascii=False) + "\n")
                chars += len(c.text)
                written += 1
            if written >= n:
                break
    return {"traces": written, "mean_chars": chars / max(1, written)}


def stage(code: str, ws: Path) -> dict:
    """Run `code` in a fresh interpreter with `ws` (the workspace) and `cfg` (defaults) defined."""
    # Anything the stage (or a worker it starts) prints goes to stderr: stdout's last line is
    # the harness's JSON result.
    head = f"""
import os
_STDOUT_FD = os.dup(1)
os.dup2(2, 1)
from dataengine.config import load_config_dict
from dataengine.store import Workspace
ws = Workspace.open({str(ws)!r})
cfg = load_config_dict({{}})
T0, C0 = time.perf_counter(), _cpu()
"""
    tail = """
RESULT["seconds"] = time.perf_counter() - T0
RESULT["cpu_seconds"] = _cpu() - C0
sys.stdout.flush()
os.dup2(_STDOUT_FD, 1)
"""
    m = run_isolated(head + textwrap.dedent(code) + STOP_FORKSERVER + tail, timeout=6 * 3600)
    return {**m.result, "peak_rss_mb": m.peak_rss_mb}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=2000, help="R1-length traces (the goal is 800,000)")
    ap.add_argument("--peer-sample", type=int, default=200, help="traces the slow peers (Math-Verify, datasketch) see")
    ap.add_argument("--scaling-pairs", type=int, default=2000, help="distinct pairs for verify's 1 vs 2 workers")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    src, ws, out = tmp / "traces.jsonl", tmp / "ws", tmp / "out"
    try:
        info = make_input(src, args.traces)
        n = info["traces"]
        file_mb = src.stat().st_size / 1e6
        text_mb = n * info["mean_chars"] / 1e6
        res: dict[str, dict] = {}
        res["ingest"] = stage(f"""
            from dataengine.ingest import IngestOptions, ingest
            rep = ingest(ws, {str(src)!r}, IngestOptions(think_format="think"))
            RESULT.update(rows=rep.taken, quarantined=rep.quarantined)
        """, ws)
        peer_ingest = run_isolated(f"""
            import duckdb
            con = duckdb.connect({str(tmp / 'duck.duckdb')!r})
            T0, C0 = time.perf_counter(), _cpu()
            con.execute("create table t as select * from read_json({str(src)!r}, format='newline_delimited')")
            RESULT["seconds"], RESULT["cpu_seconds"] = time.perf_counter() - T0, _cpu() - C0
        """)
        res["filter"] = stage("""
            from dataengine.filter_stage import run_filter
            out = run_filter(ws, cfg)
            RESULT["passed"] = out.get("passed")
        """, ws)
        res["verify"] = stage("""
            from dataengine.verify.stage import run_verify
            out = run_verify(ws, cfg, math_workers=2)
            RESULT["rows"] = int(out.get("in", 0) or 0)
        """, ws)
        res["select"] = stage("""
            from dataengine.verify.select import run_select
            run_select(ws, cfg)
        """, ws)
        res["dedup"] = stage("""
            from dataengine.dedup.stage import run_dedup
            run_dedup(ws, cfg)
        """, ws)
        res["mix"] = stage(f"""
            from dataengine.mix.assemble import run_mix
            # every qualified sample of a prompt (R1's set keeps several), so export sees ~N rows
            out = run_mix(ws, cfg, reasoning={n}, non_reasoning=0, shortfall="fill", max_per_prompt=4, seed=1)
            RESULT["rows"] = out["rows"]
        """, ws)
        res["export"] = stage(f"""
            from dataengine.mix.export import run_export
            out = run_export(ws, cfg, {str(out)!r}, test_fraction=0.01)
            RESULT["rows"] = out["total_rows"]
        """, ws)
        mix_rows = res["export"]["rows"]
        # The export's fixed cost (imports, the card and its plots) measured on a 20-row mix of the
        # same workspace, so the 800k figure is fixed + per-row x 800k, not fixed x 800k/N.
        small = stage(f"""
            from dataengine.mix.assemble import run_mix
            from dataengine.mix.export import run_export
            run_mix(ws, cfg, reasoning=20, non_reasoning=0, shortfall="fill", max_per_prompt=4, seed=1,
                    mix_id="bench-fixed-cost")
            T0, C0 = time.perf_counter(), _cpu()
            out = run_export(ws, cfg, {str(tmp / 'out-small')!r}, test_fraction=0.01, mix_id="bench-fixed-cost")
            RESULT["rows"] = out["total_rows"]
        """, ws)
        peer_copy = stage(f"""
            con = ws.connect()
            con.execute("copy (select t.trace_id, p.prompt, t.reasoning, t.answer from mix_latest m "
                        "join traces t using (trace_id) join prompts p on p.prompt_id = t.prompt_id "
                        "order by m.position) to '{tmp / 'copy.parquet'}' (format parquet, compression zstd)")
        """, ws)

        # Peers that are too slow for every trace see a sample of the same rows.
        k = min(args.peer_sample, n)
        sample = [json.loads(x) for _, x in zip(range(k), open(src, encoding="utf-8"))]
        (tmp / "sample.json").write_text(json.dumps([[r["reference_answer"], r["completion"]] for r in sample]))
        sample_mb = sum(len(r["completion"].encode()) for r in sample) / 1e6
        peer_verify = run_isolated(f"""
            import logging
            from math_verify import parse, verify
            logging.getLogger("math_verify").setLevel(logging.CRITICAL)
            pairs = json.load(open({str(tmp / 'sample.json')!r}))
            verify(parse("$1$"), parse("$1$"))
            T0, C0 = time.perf_counter(), _cpu()
            RESULT["correct"] = sum(bool(verify(parse(g), parse(c))) for g, c in pairs)
            RESULT["seconds"], RESULT["cpu_seconds"] = time.perf_counter() - T0, _cpu() - C0
        """)
        # 1 vs 2 workers on distinct pairs (no sympy cache hits across repeats), enough of them
        # that the pool's start and the last straggler do not decide the ratio.
        ks = min(args.scaling_pairs, n)
        (tmp / "scaling.json").write_text(json.dumps(
            [[r["reference_answer"], r["completion"]]
             for r in (json.loads(x) for _, x in zip(range(ks), open(src, encoding="utf-8")))]))
        scaling = {}
        for w in (1, 2):
            scaling[w] = run_isolated(f"""
                from dataengine.verify.math import MathVerifier
                pairs = [tuple(p) for p in json.load(open({str(tmp / 'scaling.json')!r}))]
                with MathVerifier(workers={w}) as mv:
                    mv.verify_batch([("1", "\\\\boxed{{1}}")] * 4)
                    T0, C0, W0 = time.perf_counter(), _cpu(), mv.pool.cpu_seconds()
                    mv.verify_batch(pairs)
                    RESULT["seconds"] = time.perf_counter() - T0
                    RESULT["cpu_seconds"] = _cpu() - C0 + mv.pool.cpu_seconds() - W0
            """)
        peer_dedup = run_isolated(f"""
            sys.path.insert(0, {str(ROOT / 'bench')!r})
            from bench_dedup import word5
            from datasketch import MinHash, MinHashLSH
            texts = [c for _, c in json.load(open({str(tmp / 'sample.json')!r}))]
            lsh = MinHashLSH(threshold=0.7, num_perm=128)
            T0, C0 = time.perf_counter(), _cpu()
            for i, t in enumerate(texts):
                m = MinHash(num_perm=128)
                m.update_batch(word5(t))
                lsh.insert(str(i), m)
            RESULT["seconds"], RESULT["cpu_seconds"] = time.perf_counter() - T0, _cpu() - C0
        """)

        def mbps(r: dict, mb: float = text_mb) -> float:
            return mb / max(r["cpu_seconds"], 1e-9)

        scale = TARGET / n
        ext = {s: r["cpu_seconds"] * scale / CORES for s, r in res.items()}
        # The export goal is 800k exported rows; the export is mostly one process, so its
        # CPU-seconds are its wall time on a quiet machine.
        d_rows = max(1, mix_rows - small["rows"])
        export_cpu_row = (res["export"]["cpu_seconds"] - small["cpu_seconds"]) / d_rows
        export_wall_row = (res["export"]["seconds"] - small["seconds"]) / d_rows
        ext["export"] = small["cpu_seconds"] + export_cpu_row * TARGET
        export_wall_800k = small["seconds"] + export_wall_row * TARGET
        ingest_ratio = (file_mb / res["ingest"]["cpu_seconds"]) / (file_mb / peer_ingest.cpu_seconds)
        verify_rate = n / res["verify"]["cpu_seconds"]
        peer_verify_rate = k / peer_verify.cpu_seconds
        second = scaling[1].seconds / scaling[2].seconds
        dedup_ratio = mbps(res["dedup"]) / (sample_mb / peer_dedup.cpu_seconds)
        export_ratio = peer_copy["seconds"] / res["export"]["seconds"]
        peers = {
            "ingest": f"DuckDB read_json {file_mb / peer_ingest.cpu_seconds:.1f} MB/cpu-s: ours {ingest_ratio:.2f}x",
            "filter": "-",
            "verify": f"Math-Verify {peer_verify_rate:.1f} pairs/cpu-s ({k} pairs): ours {verify_rate:.1f} = "
                      f"{verify_rate / peer_verify_rate:.1f}x; 2nd worker {second:.2f}x wall ({ks} pairs)",
            "select": "-",
            "dedup": f"datasketch {sample_mb / peer_dedup.cpu_seconds:.2f} MB/cpu-s ({k} docs, our normalisation): "
                     f"whole stage {dedup_ratio:.1f}x",
            "mix": "-",
            "export": f"fixed {small['seconds']:.1f} s + {export_wall_row * 1e3:.2f} ms wall, {export_cpu_row * 1e3:.2f} ms CPU "
                      f"per row; DuckDB COPY to one Parquet file {peer_copy['seconds']:.1f} s, "
                      f"{peer_copy['peak_rss_mb']:,.0f} MB: ours (3 formats) {export_ratio:.2f}x its speed",
        }
        rows = []
        for s, r in res.items():
            rows.append((f"{s}: wall s / CPU-s / MB per CPU-s / peak RSS MB",
                         f"{r['seconds']:.1f} / {r['cpu_seconds']:.1f} / {mbps(r):.1f} / {r['peak_rss_mb']:,.0f}",
                         f"800k: {ext[s] / 60:.1f} min; {peers[s]}"))
        total_min = sum(ext.values()) / 60
        goals = [
            ("all stages at 800k < 60 min (2 cores)", total_min < 60, f"{total_min:.0f} min"),
            ("ingest >= 0.5x DuckDB read_json (MB per CPU-s)", ingest_ratio >= 0.5, f"{ingest_ratio:.2f}x"),
            ("filter >= 15 MB per CPU-s", mbps(res["filter"]) >= 15, f"{mbps(res['filter']):.1f}"),
            ("verify >= 400 pairs per CPU-s", verify_rate >= 400, f"{verify_rate:.0f}"),
            ("verify 2nd worker >= 1.8x (wall; needs a quiet machine)", second >= 1.8, f"{second:.2f}x"),
            ("dedup >= 10x datasketch per core", dedup_ratio >= 10, f"{dedup_ratio:.1f}x"),
            ("export 800k < 3 min (wall: fixed + per row x 800k; needs a quiet machine)", export_wall_800k < 180,
             f"{export_wall_800k:.0f} s wall, {ext['export']:.0f} CPU-s"),
            ("export < 4 GB peak RSS (bounded: does not grow with N)", res["export"]["peak_rss_mb"] < 4096,
             f"{res['export']['peak_rss_mb']:,.0f} MB at {mix_rows:,} rows"),
        ]
        rows += [(f"goal: {g}", "met" if ok else "NOT MET", v) for g, ok, v in goals]
        load = os.getloadavg()[0]
        print_table(f"R1 scale: {n:,} simulated R1-length traces (mean {info['mean_chars']:,.0f} chars, "
                    f"{text_mb:,.0f} MB of completions, {file_mb:,.0f} MB JSONL), {mix_rows:,} rows exported; "
                    f"x{scale:,.0f} to 800k; load average {load:.1f} on {os.cpu_count()} cores; {kernel_note()}", rows)
        outdir = ROOT / "bench" / "out"
        outdir.mkdir(parents=True, exist_ok=True)
        (outdir / "bench_scale.json").write_text(json.dumps(
            {"traces": n, "mean_chars": info["mean_chars"], "stages": res, "extrapolated_800k_s": ext,
             "goals": {g: ok for g, ok, _ in goals}, "load": load}, indent=1, default=str))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
