"""Serving the pipelines as deployments on a Prefect server (`dataengine serve`).

`prefect.yaml` declares the same deployments for `prefect deploy` with a process work pool.
"""

from __future__ import annotations

from pathlib import Path

from prefect import serve

from dataengine.config import load_config
from dataengine.pipeline import PIPELINES
from flows.pipelines import PIPELINE_FLOWS

# The nightly job: re-decide filters with the current thresholds and rebuild the export.
# Generation is not repeated; verification and dedup reuse their cache when inputs are unchanged.
REFILTER_STEPS = ["filter", "verify", "select", "dedup", "decontaminate", "mix", "export"]


# Served deployments carry this prefix: `prefect.yaml` names its deployments after the same configs
# (`rejection_sampling/quickstart`), and one name for both would make either overwrite the other.
SERVE_PREFIX = "serve-"


def deployments_for(config: Path, cron: str | None = None, workspace: str | None = None) -> list:  # type: ignore[type-arg]
    """`<pipeline>/serve-<config stem>` on demand, plus `serve-nightly-refilter-<stem>` on `cron`."""
    cfg = load_config(config)
    name = cfg.pipeline or "rejection_sampling"
    if name not in PIPELINES:
        raise ValueError(f"{config}: unknown pipeline {name!r}")
    params = {"config": str(Path(config).resolve()), "workspace": workspace}
    out = [PIPELINE_FLOWS[name].to_deployment(name=f"{SERVE_PREFIX}{config.stem}", parameters=params, tags=["dataengine", name])]
    if cron:
        steps = [s for s in REFILTER_STEPS if s in PIPELINES[name]]
        out.append(PIPELINE_FLOWS[name].to_deployment(
            name=f"{SERVE_PREFIX}nightly-refilter-{config.stem}", parameters={**params, "steps": steps}, cron=cron,
            tags=["dataengine", "nightly"],
        ))
    return out


def serve_pipelines(configs: list[Path], cron: str | None = None, workspace: str | None = None) -> None:
    """Serve every deployment of `configs` from this process until interrupted."""
    deployments = [d for c in configs for d in deployments_for(Path(c), cron, workspace)]
    serve(*deployments)
