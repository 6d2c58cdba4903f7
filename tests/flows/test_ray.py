"""Shard tasks on a local Ray cluster (num_cpus=2) give exactly the results of the local run."""

from __future__ import annotations

import shutil

import pytest
import yaml

from dataengine.ingest import IngestConfig, IngestOptions, ingest
from dataengine.store import Workspace

STAGES = ("filter", "verify")


@pytest.fixture()
def two_workspaces(tmp_path, shared_data):
    """The same real traces (Sky-T1 on AMC23, with reference answers) in two workspaces."""
    a = Workspace.init(tmp_path / "local")
    ingest(a, shared_data / "traces/sky_t1/amc23__Sky-T1-math-corrupt-0.5-32B.jsonl",
           IngestOptions(kind="traces", mapping={"prompt": "question", "completion": "code", "reference_answer": "gt"},
                         domain="math", language="en"), IngestConfig())
    shutil.copytree(a.root / "tables", tmp_path / "ray" / "tables")
    b = Workspace.init(tmp_path / "ray")
    cfg = tmp_path / "ray.yaml"
    cfg.write_text(yaml.safe_dump({"pipeline": "rejection_sampling",
                                   "run": {"executor": "local", "ray_num_cpus": 2}, "filter": {"processes": 1}}))
    return a, b, cfg


def _table(ws: Workspace, sql: str) -> list[tuple]:
    return ws.query(sql).fetchall()


def test_filter_and_verify_on_ray_match_the_local_run(prefect_api, two_workspaces):
    import ray

    from flows.stages import STAGE_FLOWS

    a, b, cfg = two_workspaces
    try:
        for stage in STAGES:
            STAGE_FLOWS[stage](config=str(cfg), workspace=str(a.root), executor="local")
        for stage in STAGES:
            STAGE_FLOWS[stage](config=str(cfg), workspace=str(b.root), executor="ray")
        assert ray.is_initialized(), "the ray executor ran the tasks"
        # The Ray run's rows were written by Ray worker processes, not by this one.
        pids = {r[0] for r in _table(b, "select pid from runs where stage in ('filter', 'verify')")}
        assert pids and all(p != __import__("os").getpid() for p in pids)
    finally:
        ray.shutdown()
    filters = "select trace_id, filter, passed, reason, scores::varchar from filter_results order by all"
    assert _table(a, filters) == _table(b, filters) and len(_table(a, filters)) > 100
    if "verify" in STAGES:
        verdicts = "select trace_id, verifier, verdict, answer from verifications order by all"
        got = _table(a, verdicts)
        assert got == _table(b, verdicts) and {v[2] for v in got} >= {"correct", "incorrect"}
