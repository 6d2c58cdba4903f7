"""Pipeline flows under Prefect's test harness: stages run as cached shard tasks, a rerun skips
finished work, artifacts are attached, a missing stage fails with the module it looked for."""

from __future__ import annotations

import pytest
from flow_helpers import write_config

from dataengine.pipeline import STAGES, StageSpec
from dataengine.store import Workspace


def _task_states(name: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[name])))
    return [r.state.name for r in runs]


def test_pipeline_runs_its_steps_and_a_rerun_is_served_from_the_cache(prefect_api, tmp_path, shared_data):
    from prefect.client.orchestration import get_client

    from flows.pipelines import rejection_sampling

    cfg = write_config(tmp_path / "p.yaml", shared_data)
    ws_dir = tmp_path / "ws"
    result = rejection_sampling(config=str(cfg), workspace=str(ws_dir))
    ws = Workspace.open(ws_dir)
    assert ws.query("select count(*) from prompts").fetchone()[0] == 30
    assert result["stages"]["prompts"]["prompts_written"] == 30
    assert result["report"].endswith("report.html") and (ws_dir / "artifacts/report.html").exists()
    assert any((ws_dir / "flow-cache").iterdir()), "task results are kept in the workspace"

    again = rejection_sampling(config=str(cfg), workspace=str(ws_dir))
    assert again["stages"]["prompts"] == result["stages"]["prompts"]  # the cached result, not a re-run
    assert sorted(_task_states("prompts")) == ["Cached", "Completed"]
    assert ws.query("select count(*) from runs where stage = 'ingest'").fetchone()[0] == 1  # ingested once

    from flows.artifacts import workspace_key

    # keys are scoped to the workspace: a second workspace keeps its own artifacts
    other = rejection_sampling(config=str(cfg), workspace=str(tmp_path / "other-ws"))
    mine = {workspace_key(ws, "rejection-sampling-funnel"), workspace_key(ws, "rejection-sampling-report")}
    theirs = {workspace_key(Workspace.open(other["workspace"]), "rejection-sampling-funnel")}
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert mine <= keys and theirs <= keys and not mine & theirs
    assert all(k.startswith("ws-") for k in mine)


def test_a_stage_missing_from_the_installation_fails_the_flow_clearly(prefect_api, tmp_path, shared_data, monkeypatch):
    from flows.pipelines import rejection_sampling

    monkeypatch.setitem(STAGES, "filter", StageSpec("filter", ("dataengine.not_installed:run_filter",), ("traces",)))
    cfg = write_config(tmp_path / "p.yaml", shared_data, steps=["prompts", "filter"])
    state = rejection_sampling(config=str(cfg), workspace=str(tmp_path / "ws"), return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="dataengine.not_installed:run_filter"):
        state.result()


def test_generate_runs_as_parallel_shard_tasks_that_cover_every_pair_once(prefect_api, tmp_path):
    import yaml

    from flows.pipelines import rejection_sampling

    cfg = tmp_path / "gen.yaml"
    cfg.write_text(yaml.safe_dump({
        "pipeline": "rejection_sampling",
        "run": {"steps": ["prompts", "generate"], "demo_prompts": 40, "shards": 2},
        "demo_prompts": {"contaminated_rate": 0.0},
        "generate": {"engine": "simulated", "n": 3, "sampling_run": "sharded"},
    }))
    result = rejection_sampling(config=str(cfg), workspace=str(tmp_path / "ws"))
    ws = Workspace.open(tmp_path / "ws")
    pairs = ws.query("select count(*), count(distinct (prompt_id, sample_idx)) from traces").fetchone()
    assert pairs == (120, 120)
    workers = ws.query("select distinct counts->>'rank' from runs where stage = 'generate' and status = 'ok'").fetchall()
    assert sorted(r[0] for r in workers) == ["0", "1"]
    assert result["stages"]["generate"]["out"] == 120  # the shards' counts, summed
    assert sorted(_task_states("generate[0/2]") + _task_states("generate[1/2]")) == ["Completed", "Completed"]


def test_cold_start_pipeline_exports_a_small_reasoning_only_dataset(prefect_api, tmp_path):
    import datasets
    import yaml

    from flows.pipelines import cold_start

    cfg = tmp_path / "cold.yaml"
    cfg.write_text(yaml.safe_dump({
        "pipeline": "cold_start",
        "run": {"demo_prompts": 30},
        "demo_prompts": {"contaminated_rate": 0.0},
        "generate": {"engine": "simulated", "n": 2, "template": "cold_start", "sampling_run": "cold"},
        "filter": {"processes": 1},
        "mix": {"reasoning": 20, "non_reasoning": 0, "shortfall": "fill"},
    }))
    result = cold_start(config=str(cfg), workspace=str(tmp_path / "ws"))
    assert list(result["stages"]) == ["prompts", "generate", "filter", "verify", "mix", "export"]
    ws = Workspace.open(tmp_path / "ws")
    templates = ws.query("select distinct metadata->>'template' from traces").fetchall()
    assert templates == [("cold_start",)]
    ds = datasets.load_from_disk(str(tmp_path / "ws" / "artifacts" / "dataset" / "hf"))["train"]
    assert 0 < len(ds) <= 20 and set(ds["bucket"]) == {"reasoning"}
    assert all(m[-1]["content"].startswith("<think>") for m in ds["messages"])
