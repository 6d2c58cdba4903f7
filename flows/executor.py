"""Where a shard task's work runs: in the flow's own process, or on a Ray cluster.

A stage shard is `run_shard(...)`: plain arguments in (workspace path, config as a dict, rank),
counts out, so it can be shipped to any Ray worker that sees the same workspace folder (a shared
filesystem across nodes; the store's shard layout is what makes many writers safe).

>>> LocalExecutor().call(sum, [1, 2])
3
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dataengine.config import load_config_dict
from dataengine.pipeline import RunConfig, resolve_stage
from dataengine.store import Workspace

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_shard(
    stage: str,
    workspace: str,
    config: dict[str, Any],
    source: str,
    rank: int | None = None,
    world_size: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one shard of `stage` (all of it when `rank` is None). Picklable: Ray ships it by name."""
    cfg = load_config_dict(dict(config), source)
    kwargs = dict(overrides or {})
    if rank is not None:
        kwargs.update(rank=rank, world_size=world_size)
    result = resolve_stage(stage)(Workspace.open(workspace), cfg, **kwargs)
    return dict(result or {})


class LocalExecutor:
    name = "local"

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


class RayExecutor:
    """Runs each call as a Ray task; starts a local Ray (`num_cpus`) unless `address` is given."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        import ray

        if not ray.is_initialized():
            # Workers import dataengine/flows from this checkout, whatever their cwd.
            path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
            runtime_env = {"env_vars": {"PYTHONPATH": path}}
            if address:
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus, runtime_env=runtime_env, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
        self._ray = ray

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        remote = self._ray.remote(fn)
        return self._ray.get(remote.remote(*args, **kwargs))


def executor_for(run: RunConfig) -> LocalExecutor | RayExecutor:
    if run.executor == "ray":
        return RayExecutor(run.ray_address, run.ray_num_cpus)
    return LocalExecutor()
