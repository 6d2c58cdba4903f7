"""`verify` and `select`."""

from __future__ import annotations

from pathlib import Path

import click

from dataengine.cli._common import cli, echo_result, json_option, progress_bar, user_errors, workspace_from
from dataengine.config import load_config


@cli.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--redo", is_flag=True, help="Re-verify traces that already have verifications.")
@click.option("--math-workers", type=int, help="Math verifier worker processes.")
@click.option("--judge-engine", help="Engine for the generative judge (openai, vllm, transformers).")
@click.option("--judge-model", help="Judge model name.")
@click.option("--judge-base-url", help="OpenAI-compatible server of the judge.")
@click.option("--allow-unisolated", is_flag=True, default=None,
              help="Run code without namespaces where they are unavailable (trusted code only).")
@json_option
@click.pass_context
@user_errors
def verify(
    ctx: click.Context, config_path: Path | None, redo: bool, math_workers: int | None, judge_engine: str | None,
    judge_model: str | None, judge_base_url: str | None, allow_unisolated: bool | None, as_json: bool,
) -> None:
    """Verify traces: math (Math-Verify), multiple choice, code in a sandbox, a generative judge.

    Writes `verifications` (one row per trace and verifier); the policy per domain decides which
    verifiers run (see `dataengine config show --fields`). A rerun verifies only new traces.

    \b
    Examples:
      dataengine verify
      dataengine verify --config pipeline.yaml --math-workers 8
      dataengine verify --judge-engine openai --judge-model Qwen/Qwen2.5-72B-Instruct \\
          --judge-base-url http://gpu-node:8000/v1
      dataengine sql "select verifier, verdict, count(*) from verifications group by all"
    """
    from dataengine import sqlfiles
    from dataengine.verify.stage import run_verify

    cfg = load_config(config_path)
    ws = workspace_from(ctx)
    con = ws.connect()
    try:  # the stage's own candidate query, counted: the bar's total
        total = con.execute(f"select count(*) from ({sqlfiles.load('verify/candidates')})", {"redo": redo}).fetchall()[0][0]
    finally:
        con.close()
    with progress_bar("verify", total) as update:
        counts = run_verify(
            ws, cfg, redo=redo, math_workers=math_workers, judge_engine=judge_engine,
            judge_model=judge_model, judge_base_url=judge_base_url, allow_unisolated=allow_unisolated,
            progress=update,
        )
    echo_result("verify", counts, as_json)


@cli.command("select")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-k", "k", type=int, help="Traces kept per prompt at most.")
@click.option("--policy", type=click.Choice(["random", "shortest", "most_distinct", "journey"]))
@click.option("--seed", type=int)
@click.option("--selection", help="Name of this selection.")
@json_option
@click.pass_context
@user_errors
def select_cmd(
    ctx: click.Context, config_path: Path | None, k: int | None, policy: str | None, seed: int | None, selection: str | None,
    as_json: bool,
) -> None:
    """Rejection sampling: keep up to k verified-correct, filter-passing traces per prompt.

    Kept traces land in `selections` (view `selected_traces`); pass rates per prompt are in the
    `prompt_stats` view.

    \b
    Examples:
      dataengine select -k 4 --policy shortest
      dataengine select --policy journey --selection journey
      dataengine sql "select * from prompt_stats where pass_rate between 0.2 and 0.8"
    """
    from dataengine.verify.select import run_select

    counts = run_select(workspace_from(ctx), load_config(config_path), k=k, policy=policy, seed=seed, selection=selection)
    echo_result("select", counts, as_json)
