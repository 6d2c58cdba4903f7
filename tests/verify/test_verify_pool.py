"""The deadline pool: workers fork warm from a fork server (import and init once), recycling is
cheap and loses nothing, worker CPU time is accounted, and real math pairs grade the same in the
pool as in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dataengine.verify.math import MathVerifier, grade_math

ROOT = Path(__file__).resolve().parents[2]


def test_workers_and_their_replacements_fork_from_one_warm_server() -> None:
    # A fresh interpreter: the fork server is one per process, and this one may already run.
    code = """
import json
from dataengine.verify.pool import DeadlinePool
with DeadlinePool("tests.verify.pool_probe:probe", workers=2, deadline_s=60, max_tasks_per_worker=3,
                  init_path="tests.verify.pool_probe:init") as pool:
    outs = pool.map(list(range(20)))
    stats, cpu = pool.stats, pool.cpu_seconds()
print(json.dumps({"outs": [o.value for o in outs], "status": [o.status for o in outs], "stats": stats, "cpu": cpu}))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    outs = got["outs"]
    assert got["status"] == ["ok"] * 20 and [o["item"] for o in outs] == list(range(20))
    assert got["stats"]["recycled"] >= 4  # 20 items, 3 per worker
    pids = {o["pid"] for o in outs}
    assert len(pids) >= 6  # recycled workers are new processes ...
    server = {o["imported_in"] for o in outs}
    assert len(server) == 1 and not server & pids  # ... that all inherited one import
    for o in outs:
        # init ran once in the server, before any fork; a worker's own call comes on top of that
        assert o["init_in"][0] == o["imported_in"] and o["init_in"][1:] == [o["pid"]]
    assert got["cpu"] > 0  # the workers' CPU time is reported to the parent


def test_real_math_pairs_grade_the_same_in_recycled_workers_as_in_process(shared_data: Path) -> None:
    pairs = []
    for line in open(shared_data / "traces" / "sky_t1" / "amc23__Sky-T1-math-correct-5K-14B.jsonl", encoding="utf-8"):
        r = json.loads(line)
        pairs += [(r["gt"], c) for c in r["code"]]
    pairs = pairs[:16]
    with MathVerifier(workers=2, max_tasks_per_worker=3) as mv:
        pooled = [r.verdict for r in mv.verify_batch(pairs)]
        assert mv.pool.stats["recycled"] >= 2 and mv.pool.stats["crashes"] == 0
        assert mv.pool.cpu_seconds() > 0
    from dataengine.verify.math import _trim

    direct = [grade_math(g, _trim(c)).verdict for g, c in pairs]
    assert pooled == direct
    assert {"correct", "incorrect"} <= set(direct)  # both outcomes on real traces


def test_items_with_one_key_go_to_one_worker_even_across_recycling() -> None:
    # The samples of a prompt share a gold: one worker gets them all, so it parses the gold once.
    code = """
import json
from dataengine.verify.pool import DeadlinePool
keys = [i // 3 for i in range(30)]
with DeadlinePool("tests.verify.pool_probe:probe", workers=2, deadline_s=60, max_tasks_per_worker=4,
                  init_path="tests.verify.pool_probe:init") as pool:
    outs = pool.map(list(range(30)), keys=keys)
    stats = pool.stats
print(json.dumps({"outs": [o.value for o in outs], "status": [o.status for o in outs], "stats": stats, "keys": keys}))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["status"] == ["ok"] * 30 and [o["item"] for o in got["outs"]] == list(range(30))
    by_key: dict[int, set[int]] = {}
    for k, o in zip(got["keys"], got["outs"], strict=True):
        by_key.setdefault(k, set()).add(o["pid"])
    assert all(len(p) == 1 for p in by_key.values()), by_key
    # 30 items, 4 per worker but runs are not split (6 each): recycled by successors forked ahead
    assert got["stats"]["recycled"] >= 3
    assert len({o["pid"] for o in got["outs"]}) >= 5
