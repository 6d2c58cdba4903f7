"""`filter`, `tune`, `sample`: run the filters, sweep a threshold, look at what was rejected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dataengine.cli._common import (
    cli,
    console,
    echo_result,
    json_option,
    progress_bar,
    user_errors,
    workspace_from,
)
from dataengine.config import apply_overrides, load_config

_CONFIG = click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                       help="Pipeline YAML with a `filter:` section (thresholds, overrides).")


@cli.command("filter")
@_CONFIG
@click.option("--only", help="Run one filter (format, readability, language_mixing).")
@click.option("--rethreshold", is_flag=True, help="Re-decide stored verdicts from stored scores with the current thresholds.")
@click.option("--rescore", is_flag=True, help="Score every trace again, even those already scored.")
@click.option("--processes", type=int, help="Worker processes (default: filter.processes).")
@click.option("--limit", type=int, help="Score at most this many traces (a quick look).")
@json_option
@click.pass_context
@user_errors
def filter_cmd(ctx: click.Context, config_path: Path | None, only: str | None, rethreshold: bool, rescore: bool,
               processes: int | None, limit: int | None, as_json: bool) -> None:
    """Score traces with the format, readability and language-mixing filters.

    Every score and verdict goes to `filter_results`; a rerun scores only traces that lack a
    result. `--rethreshold` re-decides all stored verdicts from their scores (no re-scoring).

    \b
    Examples:
      dataengine filter
      dataengine filter --only language_mixing
      dataengine filter --config pipeline.yaml --rethreshold
      dataengine sql "select * from filter_funnel"
    """
    from dataengine.filter_stage import run_filter

    cfg = load_config(config_path)
    if processes is not None:
        cfg.sections["filter"] = apply_overrides(cfg.section("filter"), {"processes": processes})
    ws = workspace_from(ctx)
    with progress_bar("filter", _filter_total(ws, cfg, only, rethreshold, rescore, limit)) as update:
        res = run_filter(ws, cfg, only=only, rethreshold=rethreshold, rescore=rescore, limit=limit, progress=update)
    if as_json:
        echo_result("filter", res, True)
        return
    click.echo(
        f"{res['run_id']}: {res['in']} traces, {res['out']} passed every filter "
        f"({', '.join(res['filters'])}) in {res['seconds']:.1f}s"
        + (f", {res['mb_per_s']} MB/s" if res.get("mb_per_s") else "")
    )
    for key, n in list(res["reasons"].items())[:15]:
        click.echo(f"  {n:>8}  {key}")
    for bucket, b in res.get("by_bucket", {}).items():
        top = ", ".join(f"{k} {n}" for k, n in list(b["reasons"].items())[:3])
        click.echo(f"  {bucket}: {b['in']} in, {b['out']} passed" + (f" (top: {top})" if top else ""))
    if res["in"]:
        console.print("[dim]funnel: dataengine sql \"select * from filter_funnel\"[/]")


def _filter_total(ws: Any, cfg: Any, only: str | None, rethreshold: bool, rescore: bool, limit: int | None) -> int:
    """Traces the filter run will decide: the same selection the stage streams, counted first."""
    from dataengine.filter_stage import _pending_sql

    names = [only] if only else list(cfg.section("filter").filters)
    if rethreshold:
        sql, params = ("select count(distinct trace_id) from filter_results where list_contains($names, filter)",
                       {"names": names})
    else:
        sql, params = f"select count(*) from ({_pending_sql(rescore)})", ({} if rescore else {"names": names})
    con = ws.connect()
    try:
        total = con.execute(sql, params).fetchall()[0][0]
    finally:
        con.close()
    return min(total, limit) if limit else total


@cli.command()
@click.argument("filter_name", metavar="FILTER")
@click.option("--sweep", "sweep_spec", required=True, metavar="PARAM=START:STOP:STEP",
              help="Threshold to sweep, e.g. min_reasoning_share=0.5:1:0.05.")
@_CONFIG
@click.option("--by", type=click.Choice(["all", "bucket", "domain", "language"]), multiple=True,
              help="Groups to print (default: all four; bucket: reasoning vs non_reasoning).")
@click.option("--plot/--no-plot", default=True, show_default=True, help="Write a PNG to the workspace artifacts.")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON lines.")
@click.pass_context
@user_errors
def tune(ctx: click.Context, filter_name: str, sweep_spec: str, config_path: Path | None, by: tuple[str, ...],
         plot: bool, as_json: bool) -> None:
    """Pass rate of FILTER for each value of one threshold, from stored scores (no re-scoring).

    Prints the pass rate per step overall, per domain and per language, and writes a plot to
    `artifacts/tune_FILTER_PARAM.png` in the workspace.

    \b
    Examples:
      dataengine tune language_mixing --sweep min_reasoning_share=0.5:1:0.05
      dataengine tune readability --sweep max_paragraph_words=100:600:50 --by domain
      dataengine tune format --sweep max_completion_chars=20000:200000:20000 --no-plot
    """
    from rich.table import Table

    from dataengine.filter_tuning import margin_traces, parse_sweep, plot_sweep, sweep

    param, values = parse_sweep(sweep_spec)
    ws = workspace_from(ctx, create=False)
    rows = sweep(ws, load_config(config_path), filter_name, param, values)
    kinds = set(by) or {"all", "bucket", "domain", "language"}
    shown = [r for r in rows if r.group.split("=")[0] in kinds]
    if as_json:
        for r in shown:
            click.echo(json.dumps({"value": r.value, "group": r.group, "traces": r.traces, "passed": r.passed,
                                   "pass_rate": round(r.pass_rate, 4)}))
    else:
        from rich.console import Console

        out = Console()
        cells = {(r.value, r.group): r for r in shown}
        # One table per grouping, split so each fits the terminal (80 columns: 5 groups a table)
        # instead of squeezing every group into one table and cutting the headers to "doma…".
        per_table = max(1, (out.width - max(len(param), 7) - 6) // 10)
        for kind in ("all", "domain", "language"):
            groups = list(dict.fromkeys(r.group for r in shown if r.group.split("=")[0] == kind))
            for i in range(0, len(groups), per_table):
                chunk = groups[i:i + per_table]
                table = Table(title=f"{filter_name}: pass rate by {param}" + ("" if kind == "all" else f", per {kind}"))
                table.add_column(param, justify="right", no_wrap=True)
                for g in chunk:
                    n = next(r.traces for r in shown if r.group == g)
                    table.add_column(f"{g.partition('=')[2] or g}\nn={n:,}", justify="right", overflow="fold")
                for v in values:
                    table.add_row(f"{v:g}", *[f"{cells[(v, g)].pass_rate:.1%}" if (v, g) in cells else "" for g in chunk])
                out.print(table)
        current, margin = margin_traces(ws, load_config(config_path), filter_name, param, values)
        here = f" (configured {param} = {current:g})" if current is not None else ""
        out.print(f"at the margin{here}: traces whose decision flips between adjacent values, nearest first")
        for m in margin:
            out.print(f"  {m.trace_id}  {m.domain or '-'}/{m.language or '-'}", soft_wrap=True)
            out.print(f"    flips between {m.flip[0]:g} and {m.flip[1]:g}; fails with {m.reason}", soft_wrap=True)
        if not margin:
            out.print("  none: no trace changes its decision within this sweep")
        elif margin[0].reason:
            out.print(f"  see them: dataengine sample --reason {margin[0].reason} --filter {filter_name}")
    if plot:
        path = plot_sweep(rows, filter_name, param, ws.artifacts / f"tune_{filter_name}_{param}.png")
        console.print(f"plot: {path}")


@cli.command()
@click.option("--reason", required=True, help="A rejection reason, e.g. lang_mix_below_min (see filter_reasons).")
@click.option("-n", "n", type=int, default=5, show_default=True, help="How many traces to show.")
@click.option("--filter", "filter_name", help="Only this filter's rejections.")
@click.option("--context", type=int, default=300, show_default=True, help="Characters shown around the span.")
@click.pass_context
@user_errors
def sample(ctx: click.Context, reason: str, n: int, filter_name: str | None, context: int) -> None:
    """Show traces rejected for REASON with the offending span highlighted.

    \b
    Examples:
      dataengine sample --reason foreign_script_words_above_max -n 5
      dataengine sample --reason paragraph_too_long --filter readability -n 3 --context 600
      dataengine sql --query filter_reasons
    """
    from rich.console import Console
    from rich.text import Text

    from dataengine.filter_tuning import known_reasons, rejected_samples

    ws = workspace_from(ctx, create=False)
    found = rejected_samples(ws, reason, n, filter_name)
    if not found:
        reasons = ", ".join(f"{r} ({c})" for _f, r, c in known_reasons(ws)[:20]) or "none yet"
        raise click.ClickException(f"no trace rejected with reason {reason!r}; reasons stored: {reasons}")
    out = Console()
    for smp in found:
        text = smp.text
        if smp.span:
            a, b = smp.span
            lo, hi = max(0, a - context), min(len(text), b + context)
            body = Text(("…" if lo else "") + text[lo:a])
            body.append(text[a:b], style="bold black on yellow")
            body.append(text[b:hi] + ("…" if hi < len(text) else ""))
            where = f"{smp.part}[{a}:{b}]"
        else:
            body = Text(text[: 2 * context] + ("…" if len(text) > 2 * context else ""))
            where = f"{smp.part} (no span recorded for this reason)"
        keys = {k: v for k, v in smp.scores.items() if k not in ("spans", "foreign_spans", "sanitized") and not isinstance(v, (dict, list))}
        summary = ", ".join(f"{k}={v}" for k, v in list(keys.items())[:12])
        out.rule(f"{smp.filter}:{smp.reason}")
        out.print(Text(f"trace {smp.trace_id}  span {where}", style="bold"))
        out.print(body)
        out.print(Text(summary, style="dim"))
