"""One Prefect flow per stage. Each maps `stage_shard` over the stage's shards and adds its artifact.

A stage whose `run_<stage>` takes `rank` / `world_size` runs as `run.shards` parallel shard tasks
(each cached and retried on its own); any other stage is one task. Engine- and network-facing
stages (generate, verify: the judge) get `run.retries` retries with `run.retry_delays`.

>>> sorted(STAGE_FLOWS)[:3]
['decontaminate', 'dedup', 'export']
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.filesystems import LocalFileSystem

from dataengine.config import PipelineConfig, apply_overrides, load_config
from dataengine.pipeline import STAGES, RunConfig, accepts_shards, resolve_stage
from dataengine.store import Workspace, default_workspace_path
from flows.artifacts import publish_stage
from flows.executor import executor_for
from flows.tasks import stage_shard

FLOW_CACHE = "flow-cache"


def resolve(config: str | None, workspace: str | None, executor: str | None = None,
            shards: int | None = None) -> tuple[PipelineConfig, RunConfig, Workspace]:
    """The pipeline config, its run section with the flow's overrides, and the workspace.

    Workspace: the flow parameter, else the config's `workspace.path`, else the CLI default.
    """
    cfg = load_config(config)
    run = apply_overrides(cfg.section("run"), {"executor": executor, "shards": shards}, "flow parameters")
    cfg.sections["run"] = run
    path = workspace or cfg.section("workspace").path or default_workspace_path()
    return cfg, run, Workspace.open(path)


def run_stage(stage: str, cfg: PipelineConfig, run: RunConfig, ws: Workspace) -> dict[str, Any]:
    """Submit the shard tasks of `stage`, wait for them, publish its artifact, sum the counts."""
    logger = get_run_logger()
    fn = resolve_stage(stage)  # fails here, with the module it looked for, if the stage is missing
    sharded = accepts_shards(stage, fn) and run.shards > 1
    ranks: list[int | None] = list(range(run.shards)) if sharded else [None]
    task = stage_shard.with_options(
        retries=run.retries if STAGES[stage].remote else 0,
        retry_delay_seconds=list(run.retry_delays) if STAGES[stage].remote else 0,
        result_storage=cache_storage(ws),
    )
    if run.executor == "ray":
        # Connect in the flow's own (main) thread: Ray started from a task's worker thread lost
        # its GCS mid-run here (it cannot install its signal handlers off the main thread).
        executor_for(run)
    config = config_payload(cfg)
    overrides = dict(run.stage_overrides.get(stage, {}))
    if STAGES[stage].out_dir:
        overrides.setdefault("out_dir", str(export_dir(ws, run)))
    futures = [
        task.submit(stage, str(ws.root), config, cfg.source, rank, run.shards if sharded else None, overrides,
                    dataclasses.asdict(run))
        for rank in ranks
    ]
    results = [f.result() for f in futures]
    merged = merge_counts(results)
    logger.info("%s: %s", stage, {k: v for k, v in merged.items() if not isinstance(v, (dict, list))})
    publish_stage(ws, stage)
    return merged


def config_payload(cfg: PipelineConfig) -> dict[str, Any]:
    """The sections the file gave (and `run` with the flow's overrides), as plain data for tasks.

    Not `cfg.to_dict()`: that fills in every registered section with its defaults, and some
    sections (a trainer's, which needs a model) do not validate on defaults alone.
    """
    out: dict[str, Any] = {"pipeline": cfg.pipeline} if cfg.pipeline else {}
    out.update({name: dataclasses.asdict(obj) for name, obj in cfg.sections.items()})
    return out


def merge_counts(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Shard results summed where numeric; other values from the last shard that has them."""
    if len(results) == 1:
        return results[0]
    out: dict[str, Any] = {}
    for r in results:
        for k, v in r.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and isinstance(out.get(k, 0), (int, float)):
                out[k] = out.get(k, 0) + v
            else:
                out[k] = v
    return out


def _make_stage_flow(stage: str):  # type: ignore[no-untyped-def]
    @flow(name=f"stage-{stage}", log_prints=True)
    def stage_flow(
        config: str | None = None,
        workspace: str | None = None,
        executor: str | None = None,
        shards: int | None = None,
    ) -> dict[str, Any]:
        cfg, run, ws = resolve(config, workspace, executor, shards)
        return run_stage(stage, cfg, run, ws)

    stage_flow.__doc__ = f"Run the `{stage}` stage over the workspace (config: a pipeline YAML file)."
    return stage_flow


prompts_flow = _make_stage_flow("prompts")
generate_flow = _make_stage_flow("generate")
filter_flow = _make_stage_flow("filter")
verify_flow = _make_stage_flow("verify")
select_flow = _make_stage_flow("select")
dedup_flow = _make_stage_flow("dedup")
decontaminate_flow = _make_stage_flow("decontaminate")
mix_flow = _make_stage_flow("mix")
export_flow = _make_stage_flow("export")

STAGE_FLOWS = {
    "prompts": prompts_flow, "generate": generate_flow, "filter": filter_flow, "verify": verify_flow,
    "select": select_flow, "dedup": dedup_flow, "decontaminate": decontaminate_flow, "mix": mix_flow,
    "export": export_flow,
}
assert set(STAGE_FLOWS) == set(STAGES), "every stage has its flow"


def export_dir(ws: Workspace, run: RunConfig) -> Path:
    return Path(run.export_dir) if run.export_dir else ws.artifacts / "dataset"


def cache_storage(ws: Workspace) -> LocalFileSystem:
    """Task results (the cache) live in the workspace: a new workspace starts with no cache.

    Prefect wants result storage saved as a block; one block per workspace path.
    """
    from dataengine.records import content_hash

    block = LocalFileSystem(basepath=str(ws.root / FLOW_CACHE))
    block.save(f"dataengine-cache-{content_hash(str(ws.root))[:16]}", overwrite=True)
    return block
