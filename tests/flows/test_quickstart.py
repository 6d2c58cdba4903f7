"""README command 1 end to end: `dataengine run examples/quickstart.yaml` on Prefect's ephemeral
API leaves a workspace, an exported dataset that loads, and a report; `dataengine sql` answers.
Then the same pipeline killed with SIGKILL mid-way and run again ends with the same dataset ids."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataengine.store import Workspace

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "quickstart.yaml"


def _env(tmp: Path, api_url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _run(ws: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dataengine", "--workspace", str(ws), "run", str(CONFIG)],
                            cwd=ROOT, env=env, start_new_session=True, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _dataset_ids(dataset: Path) -> list[str]:
    import datasets

    ds = datasets.load_from_disk(str(dataset / "hf"))
    return sorted(i for split in ds.values() for i in split["trace_id"])


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> dict:
    """One uninterrupted run of README command 1, on the ephemeral API (no server running)."""
    tmp = tmp_path_factory.mktemp("quickstart")
    ws = tmp / "ws"
    proc = _run(ws, _env(tmp), tmp / "run.log")
    rc = proc.wait(timeout=900)
    out = (tmp / "run.log").read_text()
    assert rc == 0, out[-4000:]
    return {"ws": ws, "out": out, "tmp": tmp}


def test_quickstart_leaves_a_dataset_a_report_and_a_queryable_workspace(quickstart):
    ws, out = quickstart["ws"], quickstart["out"]
    dataset = ws / "artifacts" / "dataset"
    assert f"dataset:   {dataset}" in out and f"report:    {ws / 'artifacts' / 'report.html'}" in out
    ids = _dataset_ids(dataset)
    w = Workspace.open(ws)
    mixed = [r[0] for r in w.query("select trace_id from mix_members order by trace_id").fetchall()]
    assert ids == mixed and len(ids) > 100
    buckets = dict(w.query("select bucket, count(*) from mix_members group by 1").fetchall())
    assert buckets.get("reasoning", 0) > 0 and buckets.get("non_reasoning", 0) > 0
    # every stage of the pipeline ran and finished
    stages = {r[0] for r in w.query("select stage from runs where status = 'ok'").fetchall()}
    assert {"prompts", "generate", "filter", "verify", "select", "dedup", "decontaminate", "mix", "export"} <= stages, stages
    # planted benchmark problems were caught and none is in the dataset
    planted = w.query("select count(*) from prompts where metadata->>'kind' = 'benchmark'").fetchone()[0]
    mixed_planted = w.query("select count(*) from mix_members m join traces t on t.trace_id = m.trace_id "
                            "join prompts p on p.prompt_id = t.prompt_id where p.metadata->>'kind' = 'benchmark'").fetchone()[0]
    assert planted > 0 and mixed_planted == 0
    res = subprocess.run([sys.executable, "-m", "dataengine", "--workspace", str(ws), "sql", "-f", "json",
                          "select count(*) as n from traces"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0 and json.loads(res.stdout)[0]["n"] >= 600
    html = (ws / "artifacts" / "report.html").read_text()
    assert "report-data" in html and "https://" not in html


def test_sigkill_mid_pipeline_then_rerun_gives_the_same_dataset(quickstart, prefect_api, tmp_path):
    from prefect.settings import PREFECT_API_URL

    reference = _dataset_ids(quickstart["ws"] / "artifacts" / "dataset")
    ws = tmp_path / "ws"
    # The harness's API stands in for the ephemeral one here: same flows, no 30 s server start per run.
    env = _env(tmp_path, PREFECT_API_URL.value())
    proc = _run(ws, env, tmp_path / "killed.log")
    filtered = ws / "tables" / "filter_results"
    deadline = time.monotonic() + 600
    while not any(p.name != "_schema.parquet" for p in filtered.glob("*.parquet")):
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the pipeline never reached the filter stage"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and everything it started, mid-pipeline
    proc.wait()
    assert not (ws / "artifacts" / "dataset" / "hf").exists(), "killed before export"

    rerun = _run(ws, env, tmp_path / "rerun.log")
    assert rerun.wait(timeout=900) == 0, (tmp_path / "rerun.log").read_text()[-4000:]
    assert _dataset_ids(ws / "artifacts" / "dataset") == reference
    log = (tmp_path / "rerun.log").read_text()
    assert "Cached" in log, "finished tasks of the killed run are served from the cache"
