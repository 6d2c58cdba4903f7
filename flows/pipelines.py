"""The pipeline flows: `cold_start` and `rejection_sampling` (stage lists in dataengine.pipeline).

Each stage runs as a subflow (`flows.stages`), then the report is written and the run's artifacts
(funnel, links to the report and the exported dataset) are attached to the pipeline's flow run.

>>> sorted(PIPELINE_FLOWS)
['cold_start', 'rejection_sampling']
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from dataengine.pipeline import pipeline_steps
from flows.artifacts import find_dataset, publish_final
from flows.stages import STAGE_FLOWS, config_payload, resolve
from flows.tasks import write_report


def run_pipeline_steps(
    name: str,
    config: str | None,
    workspace: str | None,
    steps: list[str] | None,
    executor: str | None,
    shards: int | None,
) -> dict[str, Any]:
    logger = get_run_logger()
    cfg, run, ws = resolve(config, workspace, executor, shards)
    todo = list(steps) if steps else pipeline_steps(name, run)
    logger.info("%s on %s: %s", name, ws.root, " → ".join(todo))
    results: dict[str, Any] = {"workspace": str(ws.root), "stages": {}}
    for stage in todo:
        results["stages"][stage] = STAGE_FLOWS[stage](config=config, workspace=str(ws.root), executor=executor,
                                                      shards=shards)
    results["dataset"] = find_dataset(results["stages"].get("export", {}))
    results["report"] = write_report(str(ws.root), config_payload(cfg), cfg.source) if run.report else None
    publish_final(ws, name, results["report"], results["dataset"])
    return results


@flow(name="cold_start", log_prints=True)
def cold_start(
    config: str | None = None,
    workspace: str | None = None,
    steps: list[str] | None = None,
    executor: str | None = None,
    shards: int | None = None,
) -> dict[str, Any]:
    """R1 cold start: few-shot long-CoT generation from an RL checkpoint, format / readability /
    language filters, light verification, export of a few thousand samples."""
    return run_pipeline_steps("cold_start", config, workspace, steps, executor, shards)


@flow(name="rejection_sampling", log_prints=True)
def rejection_sampling(
    config: str | None = None,
    workspace: str | None = None,
    steps: list[str] | None = None,
    executor: str | None = None,
    shards: int | None = None,
) -> dict[str, Any]:
    """R1 rejection sampling: n samples per prompt, filter, verify, select, dedup, decontaminate,
    mix with non-reasoning data, export."""
    return run_pipeline_steps("rejection_sampling", config, workspace, steps, executor, shards)


PIPELINE_FLOWS = {"cold_start": cold_start, "rejection_sampling": rejection_sampling}
