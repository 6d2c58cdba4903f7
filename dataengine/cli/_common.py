"""Shared CLI pieces: the root group, the workspace option, user-facing errors, progress bars."""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dataengine.config import ConfigError
from dataengine.store import Workspace, WorkspaceError, default_workspace_path, fail_open_runs

F = TypeVar("F", bound=Callable[..., Any])

console = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--workspace",
    "workspace",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Workspace folder (default: $DATAENGINE_WORKSPACE, else ./workspace).",
)
@click.version_option(package_name="dataengine")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None) -> None:
    """Build R1-style reasoning SFT data: ingest, generate, filter, verify, dedup, mix, export.

    \b
    Examples:
      dataengine init
      dataengine ingest traces.jsonl --kind traces --map completion=response --domain math
      dataengine sql "select domain, count(*) from traces group by all"
      dataengine --workspace /data/ws sql --query quarantine_summary
    """
    ctx.ensure_object(dict)
    ctx.obj["workspace_path"] = workspace or default_workspace_path()
    # Given on the command line: wins over a config file's `workspace.path` (`dataengine run`).
    ctx.obj["workspace_path_explicit"] = workspace


def workspace_from(ctx: click.Context, create: bool = True) -> Workspace:
    return Workspace.open(ctx.obj["workspace_path"], create=create)


def _recording_failures(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # Whatever a stage's own error handling missed, its run does not stay `running`.
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt:
        fail_open_runs("interrupted")
        raise
    except click.exceptions.Exit:
        raise
    except BaseException:
        fail_open_runs()
        raise


def user_errors(fn: F) -> F:
    """Turn the library's user-facing errors into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return _recording_failures(fn, *args, **kwargs)
        except (ConfigError, WorkspaceError, FileNotFoundError, ValueError, KeyError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            raise click.ClickException(str(msg)) from None
        except OSError as e:
            # Arrow and Polars report a full disk as an OSError without errno: match the text too.
            text = str(e)
            if e.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left on device" not in text \
                    and "Disk quota exceeded" not in text:
                raise
            # A full disk is the user's to fix: one line naming the path, not a traceback.
            where = f" writing {e.filename}" if e.filename else ""
            raise click.ClickException(f"no space left on the device{where}: {e.strerror or text}") from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress_bar(description: str, total: float | None, unit: str = "rows") -> Iterator[Callable[[float], None]]:
    """A rich progress bar; yields `update(completed)`. Silent when stderr is not a terminal."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if unit == "rows" else TaskProgressColumn(),
        TextColumn(f"{unit}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as prog:
        task = prog.add_task(description, total=total)
        yield lambda done: prog.update(task, completed=done)


def parse_kv(values: tuple[str, ...], what: str) -> dict[str, str]:
    """`("a=b", "c=d")` → `{"a": "b", "c": "d"}` with an error naming the bad item."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint=what)
        out[key.strip()] = value
    return out


def json_option(fn: F) -> F:
    """`--json`: print the stage's full result as JSON instead of its readable summary."""
    return click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON instead of a summary.")(fn)


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def summary_lines(stage: str, result: dict[str, Any], width: int = 100) -> list[str]:
    """One readable summary of a stage result: `stage: IN in -> OUT out`, then the other figures."""
    head = f"{stage}:"
    if "in" in result or "out" in result:
        head += f" {_fmt(result.get('in', '?'))} in -> {_fmt(result.get('out', '?'))} out"
    if result.get("quarantined"):
        head += f", {_fmt(result['quarantined'])} quarantined"
    seconds = result.get("seconds")
    if isinstance(seconds, (int, float)):
        head += f" in {seconds:.1f}s"
    lines = [head]
    rest = [f"{k} {_fmt(v)}" for k, v in result.items()
            if k not in ("in", "out", "quarantined", "seconds") and not isinstance(v, dict)]
    line = " "
    for item in rest:
        if len(line) + len(item) + 2 > width and line.strip():
            lines.append(line.rstrip(","))
            line = " "
        line += f" {item},"
    if line.strip():
        lines.append(line.rstrip(","))
    lines += [f"  {k}: {_fmt(v)}" for k, v in result.items() if isinstance(v, dict) and k != "seconds"]
    return lines


def echo_result(stage: str, result: dict[str, Any], as_json: bool, lines: list[str] | None = None) -> None:
    """The end of every stage command: JSON with --json, else `lines` or the generic summary."""
    import json

    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    for line in lines if lines is not None else summary_lines(stage, result):
        click.echo(line)
