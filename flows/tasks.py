"""The one task every stage flow maps over its shards, its cache key, and the artifacts.

A shard task's cache key is the hash of what decides its output: the stage, the shard, the
resolved config (less the orchestration-only `run` and `report` sections), the overrides, and the
input tables' shard files (names and sizes). A rerun after a crash skips every shard whose task
finished, because its inputs are unchanged; a finished stage whose inputs grew (more prompts, more
traces) runs again. Results are kept inside the workspace (`<ws>/flow-cache`), so a fresh workspace
never reuses another one's cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext

from dataengine.pipeline import STAGES
from dataengine.records import content_hash
from dataengine.schema import TABLES
from dataengine.store import Workspace

# Of `run`, only the inputs of the `prompts` step decide output (the rest says how to run).
RUN_INPUT_FIELDS = ("prompts", "non_reasoning", "demo_prompts")


def input_fingerprint(workspace: str, tables: tuple[str, ...], stage: str = "") -> str:
    """Names and sizes of the shard files of `tables`: changes whenever a writer adds a shard.

    Shards the stage wrote itself (named by its run ids, `<stage>-…`) are left out: decontaminate
    reads and adds to `dedup`, and its own output must not invalidate its cache.
    """
    ws = Workspace(workspace)
    own = f"{stage}-" if stage else None
    parts = []
    for table in tables:
        if table not in TABLES:  # a table of a stage this installation does not have
            continue
        for p in ws.shards(table):
            if own is None or not p.name.startswith(own):
                parts.append(f"{table}/{p.name}:{p.stat().st_size}")
    return content_hash(*parts)


def file_fingerprint(paths: list[str]) -> str:
    """Input files named in the config: a file rewritten in place must not hit the old cache."""
    parts = []
    for path in paths:
        p = Path(path)
        st = p.stat() if p.exists() else None
        parts.append(f"{p.resolve()}:{st.st_size if st else '-'}:{st.st_mtime_ns if st else '-'}")
    return content_hash(*parts)


def shard_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    stage = parameters["stage"]
    full = parameters["config"]
    # The sections the stage reads (all but `report` when it does not say), `run` cut to its inputs.
    wanted = STAGES[stage].sections or tuple(k for k in full if k != "report")
    config = {k: full.get(k) for k in wanted}
    run = full.get("run") or {}
    if "run" in config:
        config["run"] = {k: run.get(k) for k in RUN_INPUT_FIELDS}
    files = [src["path"] for key in ("prompts", "non_reasoning") for src in run.get(key) or []]
    return "-".join((
        "dataengine", stage, str(parameters.get("rank")), str(parameters.get("world_size")),
        content_hash(
            str(Path(parameters["workspace"]).resolve()),
            json.dumps(config, sort_keys=True, default=str),
            json.dumps(parameters.get("overrides") or {}, sort_keys=True, default=str),
            input_fingerprint(parameters["workspace"], STAGES[stage].reads, stage),
            file_fingerprint(files) if stage == "prompts" else "",
        ),
    ))


def _shard_run_name() -> str:
    from prefect.runtime import task_run

    p = task_run.parameters
    return p["stage"] if p.get("rank") is None else f"{p['stage']}[{p['rank']}/{p['world_size']}]"


@task(
    task_run_name=_shard_run_name,
    cache_key_fn=shard_cache_key,
    persist_result=True,
)
def stage_shard(
    stage: str,
    workspace: str,
    config: dict[str, Any],
    source: str,
    rank: int | None = None,
    world_size: int | None = None,
    overrides: dict[str, Any] | None = None,
    executor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One shard of one stage, run by the configured executor (local process or Ray)."""
    from dataengine.pipeline import RunConfig
    from flows.executor import executor_for, run_shard

    run = RunConfig(**(executor or {}))
    return executor_for(run).call(run_shard, stage, workspace, config, source, rank, world_size, overrides)


@task(cache_policy=NO_CACHE)
def write_report(workspace: str, config: dict[str, Any], source: str) -> str:
    from dataengine.config import load_config_dict
    from dataengine.report import build_report

    cfg = load_config_dict(dict(config), source)
    return str(build_report(Workspace.open(workspace), None, cfg.section("report")))
