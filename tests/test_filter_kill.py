"""kill -9 the filter stage on 2 worker processes mid-run, rerun it: every trace gets each verdict
exactly once, the counts reconcile, and the batches handed to the workers (scratch files) are gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dataengine.ingest import IngestOptions, ingest
from dataengine.store import Workspace

QWQ = "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"


def test_sigkill_midway_then_rerun_scores_each_trace_once(tmp_path: Path, shared_data: Path):
    ws = Workspace.init(tmp_path / "ws")
    rep = ingest(ws, shared_data / QWQ, IngestOptions(mapping={"prompt": "question", "completion": "response"},
                                                     think_format="prompt_opened", domain="math"))
    n = rep.taken
    assert n > 2000
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    cmd = [sys.executable, "-m", "dataengine", "--workspace", str(ws.root), "filter", "--processes", "2",
           "--config", str(tmp_path / "cfg.yaml")]
    (tmp_path / "cfg.yaml").write_text("filter:\n  batch_size: 100\n")
    # Its own session, so the kill reaches the fork server and the workers too.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    shards = ws.root / "tables" / "filter_results"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and len(list(shards.glob("filter-*.parquet"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = ws.query("select count(distinct trace_id) from filter_results").fetchone()[0]
    assert 0 < done < n, "the kill should land mid-run"

    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    rows, traces, per_trace = ws.query(
        "select count(*), count(distinct trace_id), max(k) from (select trace_id, filter, count(*) over "
        "(partition by trace_id, filter) k from filter_results)").fetchone()
    assert traces == n and rows == 3 * n and per_trace == 1
    assert not (ws.root / "scratch").exists() or not any((ws.root / "scratch").iterdir())
    ok = ws.query("select run_id, (counts->>'in')::int from runs where stage = 'filter' and status = 'ok'").fetchall()
    assert len(ok) == 1 and ok[0][1] == n - done  # the rerun scored only what the killed run had not stored
    scored_again = ws.query("select count(distinct trace_id) from filter_results where run_id = $r",
                            {"r": ok[0][0]}).fetchone()[0]
    assert scored_again == n - done
