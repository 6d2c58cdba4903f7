"""kill -9 an ingest at a random point, rerun it, and find every row exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from dataengine.store import Workspace

N_ROWS = 40_000


def _write_big_file(path: Path) -> None:
    rng = random.Random(7)
    filler = "Let me verify this step again carefully. " * 40
    with open(path, "w") as f:
        for i in range(N_ROWS):
            f.write(json.dumps({"prompt": f"Problem {i}: compute {rng.randint(1, 10**6)} squared.",
                                "completion": f"<think>{filler}</think>answer {i}", "idx": i}) + "\n")


def _ingest_cmd(ws: Path, path: Path) -> list[str]:
    return [sys.executable, "-m", "dataengine", "--workspace", str(ws), "ingest", str(path), "--domain", "math"]


def test_sigkill_midway_then_rerun_gives_each_row_once(tmp_path: Path):
    src = tmp_path / "big.jsonl"
    _write_big_file(src)
    ws_path = tmp_path / "ws"
    Workspace.init(ws_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    # Small shards so several complete before the kill lands.
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("ingest:\n  shard_rows: 3000\n")
    proc = subprocess.Popen([*_ingest_cmd(ws_path, src), "--config", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    traces = ws_path / "tables" / "traces"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(traces.glob("*.parquet"))) < 3:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ws = Workspace.open(ws_path)
    partial = ws.query("select count(*) from traces").fetchone()[0]
    assert 0 < partial < N_ROWS, "the kill should land mid-run"

    out = subprocess.run([*_ingest_cmd(ws_path, src), "--config", str(cfg)], env=env,
                         capture_output=True, text=True, check=True)
    assert f"already stored {partial}" in out.stdout
    total, distinct, idx_distinct, lo, hi = ws.query(
        "select count(*), count(distinct trace_id), count(distinct (metadata->>'idx')::int), "
        "min((metadata->>'idx')::int), max((metadata->>'idx')::int) from traces"
    ).fetchone()
    assert (total, distinct, idx_distinct, lo, hi) == (N_ROWS, N_ROWS, N_ROWS, 0, N_ROWS - 1)
    assert ws.query("select count(*), count(distinct prompt_id) from prompts").fetchone() == (N_ROWS, N_ROWS)
    # the rerun found the killed run's pid gone and recorded it `failed`; the rerun is `ok`
    statuses = sorted(r[0] for r in ws.query("select status from runs where stage = 'ingest'").fetchall())
    assert statuses == ["failed", "ok"]
