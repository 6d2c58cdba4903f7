"""`report`."""

from __future__ import annotations

from pathlib import Path

import click

from dataengine.cli._common import cli, user_errors, workspace_from
from dataengine.config import apply_overrides, load_config


@cli.command()
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the page (default: <workspace>/artifacts/report.html).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pipeline config; its `report` section sets the sample size and the sliders.")
@click.option("--sample-size", type=int, help="Traces whose stored scores the page's sliders re-decide.")
@click.option("--mix-id", help="Mix to show (default: the one the newest export wrote, else the latest mix).")
@click.pass_context
@user_errors
def report(ctx: click.Context, out: Path | None, config_path: Path | None, sample_size: int | None,
           mix_id: str | None) -> None:
    """Write one self-contained HTML report of the workspace (no network needed to view it).

    Funnel, pass rates per filter / domain / language, length histograms, languages, verdicts,
    dedup and contamination, mix against quota, threshold sweeps, and sliders that re-decide a
    sample of stored filter verdicts live in the page. Stages that have not run are marked so.

    \b
    Examples:
      dataengine report --out report.html
      dataengine --workspace /data/ws report --config examples/quickstart.yaml --sample-size 5000
    """
    from dataengine.report import build_report

    cfg = apply_overrides(load_config(config_path).section("report"), {"sample_size": sample_size, "mix_id": mix_id})
    path = build_report(workspace_from(ctx, create=False), out, cfg)
    click.echo(f"report: {path}")
