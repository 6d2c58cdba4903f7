"""`run` and `serve`: pipelines as Prefect flows (the flows live in `flows/`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import click

from dataengine.cli._common import cli, console, user_errors
from dataengine.config import load_config
from dataengine.pipeline import PIPELINES


def missing_inputs(cfg) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(field, path) of the input files a pipeline config names that do not exist (paths are
    already resolved against the config's folder)."""
    run, decon, demo = cfg.section("run"), cfg.section("decontaminate"), cfg.section("demo_prompts")
    named = [(f"run.prompts[{i}].path", p.path) for i, p in enumerate(run.prompts)]
    named += [(f"run.non_reasoning[{i}].path", p.path) for i, p in enumerate(run.non_reasoning)]
    named += [(f"decontaminate.benchmarks.{k}.path", b.path) for k, b in decon.benchmarks.items()]
    if demo.benchmark_path:
        named.append(("demo_prompts.benchmark_path", demo.benchmark_path))
    # hub datasets (org/name) are not files; only paths that look local are checked
    return [(f, p) for f, p in named if not Path(p).exists() and (p.startswith((".", "/")) or Path(p).suffix)]


def prefect_defaults(ui: bool = False) -> None:
    """Settings for Prefect on this machine, unless the user set them: no telemetry, and enough
    time for the ephemeral API to start on a loaded 2-core machine (its default is 20 s). The UI is
    off for `run` (an ephemeral API that stops with the command: no page to link to) and on for
    the server `serve` starts, so the run URLs Prefect logs open."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_UI_ENABLED", "true" if ui else "false")


@cli.command("run")
@click.argument("config_path", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pipeline", type=click.Choice(sorted(PIPELINES)), help="Pipeline to run (default: the config's `pipeline:`).")
@click.option("--steps", help="Comma-separated stages to run instead of the pipeline's own list.")
@click.option("--executor", type=click.Choice(["local", "ray"]), help="Where shard tasks run (default: the config's run.executor).")
@click.option("--shards", type=int, help="Shard tasks per stage, for stages that take rank/world_size.")
@click.pass_context
@user_errors
def run_cmd(ctx: click.Context, config_path: Path, pipeline: str | None, steps: str | None,
            executor: str | None, shards: int | None) -> None:
    """Run a pipeline flow (cold_start or rejection_sampling) on Prefect's ephemeral API.

    No Prefect server is needed. Finished shard tasks are cached inside the workspace, so running
    the same command again after a crash or a kill skips them and finishes the rest.

    \b
    Examples:
      dataengine run examples/quickstart.yaml
      dataengine --workspace /data/ws run examples/gpu_vllm.yaml --executor ray
      dataengine run examples/quickstart.yaml --steps filter,verify,select,mix,export
    """
    cfg = load_config(config_path)  # validate before Prefect starts
    name = pipeline or cfg.pipeline
    if name is None:
        raise click.UsageError(f"{config_path}: no `pipeline:` in the config; pass --pipeline {{{','.join(PIPELINES)}}}")
    if name not in PIPELINES:
        raise click.UsageError(f"{config_path}: unknown pipeline {name!r}; known: {', '.join(PIPELINES)}")
    missing = missing_inputs(cfg)
    if missing:  # one line now, not a stage failure inside 200 lines of flow logs later
        raise click.UsageError(f"{config_path}: {missing[0][0]}: {missing[0][1]}: no such file"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    prefect_defaults()
    from flows.pipelines import PIPELINE_FLOWS

    workspace = ctx.obj.get("workspace_path_explicit")
    result = PIPELINE_FLOWS[name](
        config=str(config_path.resolve()),
        workspace=str(workspace) if workspace else None,
        steps=[s.strip() for s in steps.split(",") if s.strip()] if steps else None,
        executor=executor,
        shards=shards,
    )
    click.echo(f"workspace: {result['workspace']}")
    if result.get("dataset"):
        click.echo(f"dataset:   {result['dataset']}")
    if result.get("report"):
        click.echo(f"report:    {result['report']}")
    click.echo(f"query it:  dataengine --workspace {result['workspace']} sql \"select stage, status, count_out from runs\"")


@cli.command()
@click.option("--config", "configs", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pipeline config served as a deployment (repeatable; default: the packaged quickstart).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the Prefect server started here.")
@click.option("--port", default=4200, show_default=True, type=int)
@click.option("--api-url", help="Use this running Prefect API instead of starting a server.")
@click.option("--cron", default="0 2 * * *", show_default=True,
              help="Schedule of the nightly re-filter and export deployment (empty: none).")
@click.pass_context
@user_errors
def serve(ctx: click.Context, configs: tuple[Path, ...], host: str, port: int, api_url: str | None, cron: str) -> None:
    """Start a Prefect server on loopback and serve the pipelines as deployments (blocks).

    Deployments per config: `<pipeline>/serve-<config name>` (run on demand) and
    `rejection_sampling/serve-nightly-refilter-<config name>` (filter → … → export on the cron
    schedule). Trigger one with `prefect deployment run 'rejection_sampling/serve-quickstart'`.
    `prefect.yaml` holds the work-pool deployments for `prefect deploy` under their own names
    (`rejection_sampling/quickstart`), so the two never overwrite each other.

    \b
    Examples:
      dataengine serve
      dataengine serve --config examples/quickstart.yaml --port 4300 --cron "30 1 * * *"
      dataengine serve --api-url http://127.0.0.1:4200/api --config examples/gpu_vllm.yaml
    """
    prefect_defaults(ui=True)
    server = None
    if not api_url:
        api_url = f"http://{host}:{port}/api"
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)])
        wait_for_api(api_url, server)
        ui = os.environ.get("PREFECT_UI_ENABLED", "true").lower() not in ("0", "false", "no")
        console.print(f"Prefect server: http://{host}:{port}" + ("" if ui else " (UI off: PREFECT_UI_ENABLED)"))
    os.environ["PREFECT_API_URL"] = api_url
    try:
        from flows.deployments import serve_pipelines

        workspace = ctx.obj.get("workspace_path_explicit")
        from dataengine import example_files

        # The packaged quickstart: `serve` works from any directory, not only the repository root.
        serve_pipelines(list(configs) or [example_files.root() / "quickstart.yaml"], cron or None,
                        str(workspace) if workspace else None)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


def wait_for_api(api_url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 240) -> None:
    """Block until `api_url`/health answers (the server process must stay alive meanwhile)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise click.ClickException(f"prefect server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise click.ClickException(f"Prefect API at {api_url} did not answer within {timeout:.0f}s")
