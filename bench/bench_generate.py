"""Generation: the stage's own overhead, and the openai engine's sustained requests/s.

1. Pipeline overhead with the `simulated` engine: `run_generate` over --prompts demo prompts,
   n=4, timed end to end; the time spent waiting on the engine is measured inside the stage
   (`engine_wait_s`), and the rest is the stage's overhead (planning, template rendering, id
   checks, splitting, Parquet writes). Goal: overhead >= 5,000 traces/s, so the pipeline is
   never what holds a GPU back. Baseline: the simulated engine alone on the same requests.
2. The `openai` engine with 256 requests in flight against the local simulated OpenAI server
   (a separate process), against a bare httpx loop with the same concurrency and bodies (no
   retries, no parsing): what our retry/parse/bookkeeping layer costs.

    python bench/bench_generate.py --prompts 5000 --requests 4000
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import ROOT, print_table, run_isolated


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pipeline(tmp: Path, prompts: int) -> list[tuple[str, str, str]]:
    ws = str(tmp / "ws")
    stage = run_isolated(f"""
        from dataengine.config import load_config_dict
        from dataengine.generate import run_demo_prompts, run_generate
        from dataengine.store import Workspace
        ws = Workspace.init({ws!r})
        cfg = load_config_dict({{"generate": {{"n": 4, "batch_size": 1024}}}})
        run_demo_prompts(ws, cfg, {prompts})
        T0 = time.perf_counter()
        C0 = time.process_time()
        c = run_generate(ws, cfg)
        RESULT["seconds"] = time.perf_counter() - T0
        RESULT["cpu_s"] = time.process_time() - C0
        RESULT.update(traces=c["out"], engine_wait_s=c["engine_wait_s"], pipeline_s=c["pipeline_s"])
        RESULT["stored"] = ws.query("select count(*) from traces").fetchone()[0]
    """)
    engine = run_isolated(f"""
        from dataengine.demo_problems import demo_prompts, load_benchmark
        from dataengine.engines import GenerationRequest, SamplingParams
        from dataengine.engines.simulated import SimulatedEngine
        from dataengine.prompting import PromptRenderer
        r = PromptRenderer("rejection_sampling")
        reqs = [GenerationRequest(p.prompt_id, messages=r.messages(p.to_row()), params=SamplingParams(n=4),
                                  metadata={{"prompt_metadata": p.metadata}})
                for p in demo_prompts({prompts}, 0, None, 0.02, load_benchmark(None))]
        T0 = time.perf_counter()
        C0 = time.process_time()
        out = SimulatedEngine().generate(reqs)
        RESULT["seconds"] = time.perf_counter() - T0
        RESULT["cpu_s"] = time.process_time() - C0
        RESULT["samples"] = sum(len(x.completions) for x in out)
    """)
    r = stage.result
    assert r["stored"] == r["traces"] == prompts * 4, r
    e2e = r["traces"] / stage.seconds
    overhead = r["traces"] / max(r["pipeline_s"], 1e-9)
    eng = engine.result["samples"] / engine.seconds
    # CPU-seconds are what the stage would cost on an idle machine; wall time on a shared 2-core
    # box includes waiting for a core. Overhead CPU = stage CPU - the engine's CPU on the same work.
    cpu_overhead = r["traces"] / max(r["cpu_s"] - engine.result["cpu_s"], 1e-9)
    return [
        ("stage overhead traces/s (wall, excl. engine wait)", f"{overhead:,.0f}", f"{overhead / 5000:.2f}x the 5,000/s goal"),
        ("stage overhead traces/CPU-second (excl. engine CPU)", f"{cpu_overhead:,.0f}", f"{cpu_overhead / 5000:.2f}x the 5,000/s goal"),
        ("stage end-to-end traces/s (simulated)", f"{e2e:,.0f}", f"{e2e / eng:.2f}x engine alone"),
        ("simulated engine alone samples/s", f"{eng:,.0f}", "1.00x (baseline)"),
        ("stage seconds: engine / own", f"{r['engine_wait_s']:.2f} / {r['pipeline_s']:.2f}", f"{prompts:,} prompts x n=4"),
        ("stage peak RSS MB", f"{stage.peak_rss_mb:,.0f}", ""),
    ]


def openai(requests: int, concurrency: int) -> list[tuple[str, str, str]]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "dataengine.engines.simserver", "--port", str(port), "--no-defects"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert "serving" in (server.stdout.readline() if server.stdout else "")
        url = f"http://127.0.0.1:{port}/v1"
        setup = f"""
            from dataengine.demo_problems import demo_prompts
            from dataengine.engines import GenerationRequest, SamplingParams
            reqs = [GenerationRequest(p.prompt_id, messages=[{{"role": "user", "content": p.prompt}}],
                                      params=SamplingParams(n=1, max_tokens=4096)) for p in demo_prompts({requests}, seed=11)]
        """
        ours = run_isolated(setup + f"""
            from dataengine.engines.openai_engine import OpenAIEngine
            eng = OpenAIEngine("simulated", base_url={url!r}, max_concurrency={concurrency})
            eng.generate(reqs[:{concurrency}])  # warm the connection pool
            T0 = time.perf_counter()
            out = eng.generate(reqs)
            RESULT["seconds"] = time.perf_counter() - T0
            RESULT["ok"] = sum(r.ok for r in out)
            RESULT["tokens"] = sum(c.completion_tokens for r in out for c in r.completions)
        """)
        bare = run_isolated(setup + f"""
            import asyncio, json, httpx
            bodies = [json.dumps({{"model": "simulated", "messages": r.messages, "n": 1, "max_tokens": 4096}}).encode() for r in reqs]
            async def main():
                limits = httpx.Limits(max_connections={concurrency}, max_keepalive_connections={concurrency})
                async with httpx.AsyncClient(base_url={url!r}, limits=limits, timeout=600) as c:
                    it = iter(bodies)
                    async def worker():
                        n = 0
                        for b in it:
                            r = await c.post("/chat/completions", content=b)
                            n += r.status_code == 200
                        return n
                    await asyncio.gather(*(worker() for _ in range({concurrency})))
                    it = iter(bodies)
                    t0 = time.perf_counter()
                    ok = sum(await asyncio.gather(*(worker() for _ in range({concurrency}))))
                    return ok, time.perf_counter() - t0
            RESULT["ok"], RESULT["seconds"] = asyncio.run(main())
        """)
    finally:
        server.terminate()
        server.wait(10)
    assert ours.result["ok"] == requests and bare.result["ok"] == requests
    o, b = requests / ours.seconds, requests / bare.seconds
    return [
        (f"openai engine requests/s ({concurrency} in flight)", f"{o:,.0f}", f"{o / b:.2f}x bare httpx"),
        (f"bare httpx requests/s ({concurrency} in flight)", f"{b:,.0f}", "1.00x (baseline)"),
        ("openai engine completion tokens/s", f"{ours.result['tokens'] / ours.seconds:,.0f}", "simulated server, ~250 tok/answer"),
        ("openai engine client peak RSS MB", f"{ours.peak_rss_mb:,.0f}", f"{ours.peak_rss_mb / bare.peak_rss_mb:.2f}x bare"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=5000)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=256)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    try:
        rows = pipeline(tmp, args.prompts)
        rows += openai(args.requests, args.concurrency)
        load = os.getloadavg()[0]
        print_table(f"generate: {args.prompts:,} prompts x n=4 (simulated); {args.requests:,} HTTP requests "
                    f"(load average {load:.1f} on {os.cpu_count()} cores at the end)", rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
