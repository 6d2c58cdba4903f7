"""Concurrent writers as real processes: one row per key in every view, work done once, leases
that a crashed holder loses."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _faults import AIME, SKY_MAP, env, run_cli, start_cli

from dataengine.store import Workspace, WorkspaceError


def _both(ws: Path, *args: str) -> list[subprocess.CompletedProcess[str]]:
    procs = [start_cli(ws, *args) for _ in range(2)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, (args, stdout, stderr)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def _one(ws: Workspace, sql: str) -> int:
    con = ws.connect()
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_two_concurrent_ingests_of_one_file_store_each_trace_once(tmp_path, shared_data):
    ws_dir = tmp_path / "ws"
    Workspace.init(ws_dir)
    _both(ws_dir, "ingest", str(shared_data / AIME), *SKY_MAP)
    ws = Workspace(ws_dir)
    assert _one(ws, "select count(*) from traces") == 30
    # The lease made the second ingest find every id stored: nothing was written twice.
    assert _one(ws, "select count(*) from traces_history") == 30
    assert _one(ws, "select count(*) from prompts_history") == 30
    runs = ws.query("select count_out, counts->>'already_stored' from runs where stage = 'ingest' "
                    "and status = 'ok' order by count_out desc").fetchall()
    assert [(r[0], int(r[1])) for r in runs] == [(30, 0), (0, 30)]


def test_two_concurrent_generates_on_one_rank_sample_each_pair_once_then_filter_and_verify_once(tmp_path, shared_data):
    ws_dir = tmp_path / "ws"
    Workspace.init(ws_dir)
    run_cli(ws_dir, "ingest", str(shared_data / AIME), "--kind", "prompts", "--map", "prompt=question",
            "--map", "reference_answer=gt", "--domain", "math")
    _both(ws_dir, "generate", "--sampling-run", "d", "--n", "4", "--rank", "0", "--world-size", "1")
    ws = Workspace(ws_dir)
    assert _one(ws, "select count(*) from traces") == 120
    assert _one(ws, "select count(distinct trace_id) from traces") == 120
    assert _one(ws, "select count(*) from traces_history") == 120  # sampled once, not twice

    _both(ws_dir, "filter")
    n_filters = _one(ws, "select count(distinct filter) from filter_results")
    assert n_filters >= 1
    assert _one(ws, "select count(*) from filter_results") == 120 * n_filters
    assert _one(ws, "select count(*) from filter_results_history") == 120 * n_filters  # scored once

    _both(ws_dir, "verify")
    verified = _one(ws, "select count(*) from verifications")
    assert verified >= 120
    assert _one(ws, "select count(*) from verifications_history") == verified  # verified once
    assert _one(ws, "select count(*) from (select trace_id, verifier from verifications group by all having count(*) > 1)") == 0


_WRITER = """
import sys
from dataengine.store import Workspace
ws = Workspace(sys.argv[1])
tag = sys.argv[2]
for i in range(5):
    ws.write_shard("traces", [{"trace_id": f"t{j}", "prompt_id": "p", "completion": f"{tag}-{i}"} for j in range(50)])
    ws.write_shard("filter_results", [{"trace_id": f"t{j}", "filter": "format", "passed": True, "reason": tag}
                                      for j in range(50)])
"""


def test_views_yield_one_row_per_key_whatever_unleased_writers_did(tmp_path):
    # Writers that bypass every lease (an older version, a user's script) store keys many times:
    # the views still yield each key once, the newest complete shard's row, the same every time.
    ws = Workspace.init(tmp_path / "ws")
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(ws.root), tag], env=env()) for tag in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=300) == 0
    assert _one(ws, "select count(*) from traces_history") == 500
    assert _one(ws, "select count(*) from traces") == 50
    assert _one(ws, "select count(*) from filter_results") == 50
    first = ws.query("select trace_id, completion from traces order by trace_id").fetchall()
    assert first == ws.query("select trace_id, completion from traces order by trace_id").fetchall()
    assert all(c.endswith("-4") for _t, c in first)  # a writer's last shard is newer than its others
    latest = ws.query("select max(written_at) from traces_history").fetchone()[0]
    assert {w for (w,) in ws.query("select distinct written_at from traces").fetchall()} == {latest}


_HOLDER = """
import sys, time
from pathlib import Path
from dataengine.store import Workspace
with Workspace(sys.argv[1]).lease("stage:filter"):
    Path(sys.argv[2]).write_text("held")
    time.sleep(600)
"""


def test_a_lease_is_lost_when_its_holder_is_killed(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    flag = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(ws.root), str(flag)], env=env())
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(WorkspaceError, match=rf"held by pid {holder.pid}"), ws.lease("stage:filter", wait=False):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        with ws.lease("stage:filter", wait=False):  # the kernel dropped the dead holder's lock
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
