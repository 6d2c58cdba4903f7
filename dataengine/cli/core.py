"""`init`, `sql` and `config show`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import duckdb

from dataengine import example_files, sqlfiles
from dataengine.cli._common import cli, echo_result, json_option, parse_kv, user_errors, workspace_from
from dataengine.config import SECTIONS, field_help, load_config
from dataengine.sqlguard import SqlRefused, check_statement
from dataengine.sqlout import FORMATS, write_result
from dataengine.store import Workspace


@cli.command()
@click.option("--example", type=click.Choice(example_files.names()), help="Also copy the packaged examples into --dir and "
              "print the command that runs this one.")
@click.option("--dir", "dest", type=click.Path(file_okay=False, path_type=Path), default=Path("examples"),
              show_default=True, help="Where --example copies the example configs and their data files.")
@click.pass_context
@user_errors
def init(ctx: click.Context, example: str | None, dest: Path) -> None:
    """Create the workspace (tables, catalog views); safe to run again.

    \b
    Examples:
      dataengine init
      dataengine --workspace /data/r1-ws init
      dataengine init --example quickstart && dataengine run examples/quickstart.yaml
    """
    ws = Workspace.init(ctx.obj["workspace_path"])
    click.echo(f"workspace ready at {ws.root}")
    if example:
        written, kept = example_files.copy_to(dest)
        click.echo(f"examples: {len(written)} files written to {dest}" + (f", {len(kept)} existing kept" if kept else ""))
        click.echo(f"next:     dataengine run {dest / example_files.config_file(example)}")


@cli.command()
@click.argument("sql_text", required=False, metavar="SQL")
@click.option("--query", "-q", "query_name", help="Run the named query sql/NAME.sql instead of SQL.")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Bind $NAME (repeatable).")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file (needed for parquet).")
@click.option("--write", is_flag=True, help="Open the catalog read-write (takes the write lock); "
              "without it one reading statement runs, with file access limited to the workspace.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pipeline config; its workspace.sql_allowed_dirs may also be read.")
@click.option("--list", "list_queries", is_flag=True, help="List the named queries and exit.")
@click.pass_context
@user_errors
def sql(
    ctx: click.Context,
    sql_text: str | None,
    query_name: str | None,
    params: tuple[str, ...],
    fmt: str,
    out: Path | None,
    write: bool,
    config_path: Path | None,
    list_queries: bool,
) -> None:
    """Query the workspace with DuckDB SQL. Read-only unless --write.

    Parameters are bound, never pasted into the SQL: write `$name` and pass `-p name=value`
    (values arrive as strings; cast in SQL where needed, e.g. `$n::int`). `-` reads SQL from stdin.

    \b
    Examples:
      dataengine sql "select domain, count(*) from traces group by all"
      dataengine sql --format json "select * from traces where metadata->>'idx' = $i" -p i=4
      dataengine sql --query quarantine_summary
      echo "select count(*) from prompts" | dataengine sql -
      dataengine sql -f parquet -o accepted.parquet "select * from traces limit 100"
    """
    if list_queries:
        for name in sqlfiles.named_queries():
            click.echo(name)
        return
    if query_name and sql_text:
        raise click.UsageError("give either SQL or --query NAME, not both")
    if query_name:
        text = sqlfiles.load(query_name)
    elif sql_text == "-":
        text = sys.stdin.read()
    elif sql_text:
        text = sql_text
    else:
        raise click.UsageError("give SQL, '-' for stdin, or --query NAME")
    ws = workspace_from(ctx, create=False)  # a mistyped --workspace must not leave an empty one behind
    if out is not None and out.resolve().is_relative_to(ws.root / "tables"):
        raise click.ClickException(f"--out {out}: inside the workspace's tables/, which only the store writes")
    try:
        check_statement(text, write, ws.root / "tables")
    except SqlRefused as e:
        raise click.ClickException(str(e)) from None
    allowed = load_config(config_path).section("workspace").sql_allowed_dirs
    con = ws.connect_limited(allowed, read_only=not write)
    try:
        try:
            bound = parse_kv(params, "--param")
            # A relation streams to Arrow without the extra copy a DB-API result makes.
            rel = con.sql(text, params=bound) if fmt == "parquet" else con.execute(text, bound)
        except duckdb.InvalidInputException as e:
            if "read-only" in str(e):
                raise click.ClickException(f"the workspace is opened read-only; pass --write to change it ({e})") from None
            raise click.ClickException(str(e)) from None
        except duckdb.Error as e:
            raise click.ClickException(f"SQL error: {e}") from None
        n = write_result(rel, fmt, out)
        if out is not None:
            click.echo(f"wrote {n:,} rows to {out} ({fmt})", err=True)
    finally:
        con.close()


@cli.command()
@json_option
@click.pass_context
@user_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """What the workspace holds: rows per table, the latest run of each stage, stale stages.

    A stage is stale when a stage writing its inputs finished after it (rerun it, or `dataengine run`).

    \b
    Examples:
      dataengine status
      dataengine --workspace /data/ws status --json
    """
    from dataengine.status import workspace_status

    st = workspace_status(workspace_from(ctx, create=False))
    if as_json:
        echo_result("status", st, True)
        return
    click.echo(f"workspace {st['workspace']}")
    click.echo("tables: " + ", ".join(f"{t} {n:,}" if isinstance(n, int) else f"{t} ({n})"
                                       for t, n in st["tables"].items() if n))
    empty = [t for t, n in st["tables"].items() if n == 0]
    if empty:
        click.echo(f"empty:  {', '.join(empty)}")
    click.echo(f"{'stage':<14} {'status':<8} {'runs':>4} {'in':>9} {'out':>9} {'quar.':>6}  ended")
    for r in st["stages"]:
        num = [f"{r[k]:,}" if isinstance(r[k], int) else "-" for k in ("in", "out", "quarantined")]
        mark = "  STALE: newer " + ", ".join(st["stale"][r["stage"]]) if r["stage"] in st["stale"] else ""
        click.echo(f"{r['stage']:<14} {r['status']:<8} {r['runs']:>4} {num[0]:>9} {num[1]:>9} {num[2]:>6}  "
                   f"{(r['ended_at'] or 'running')[:19]}{mark}")
    if st["running"]:
        click.echo(f"open runs: {', '.join(st['running'])}")


@cli.group()
def config() -> None:
    """Pipeline configuration files."""


@config.command("show")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fields", is_flag=True, help="List every field with its help text and default.")
@user_errors
def config_show(config_path: Path | None, fields: bool) -> None:
    """Print the resolved config (the file merged over every default) as YAML.

    \b
    Examples:
      dataengine config show
      dataengine config show --config examples/quickstart.yaml
      dataengine config show --fields
    """
    cfg = load_config(config_path)
    if fields:
        cfg.to_dict()  # imports every stage's section
        for name, cls in SECTIONS.items():
            click.echo(f"{name}:")
            for fname, help_text, default in field_help(cls):
                click.echo(f"  {fname} = {default!r}  # {help_text}")
        return
    click.echo(cfg.to_yaml(), nl=False)
