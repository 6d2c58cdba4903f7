"""The CLI: documented commands, SQL formats and parameters, read-only by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataengine.cli import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def loaded(tmp_path: Path):
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    r = runner.invoke(cli, ["--workspace", ws, "ingest", str(ROOT / "examples" / "sample_traces.jsonl"),
                            "--map", "completion=response", "--map", "reference_answer=gold"])
    assert r.exit_code == 0, r.output
    return runner, ws


def test_sample_ingest_reconciles(loaded):
    runner, ws = loaded
    r = runner.invoke(cli, ["--workspace", ws, "sql", "-f", "json", "select count(*) as n from traces"])
    assert json.loads(r.output) == [{"n": 6}]
    r = runner.invoke(cli, ["--workspace", ws, "sql", "-f", "jsonl", "--query", "quarantine_summary"])
    reasons = sorted(json.loads(x)["reason"] for x in r.output.splitlines())
    assert reasons == ["empty_prompt", "invalid_json", "wrong_type"]


def test_sql_binds_parameters(loaded):
    runner, ws = loaded
    r = runner.invoke(cli, ["--workspace", ws, "sql", "--format", "json",
                            "select metadata->>'id' as id from traces where metadata->>'id' = $i", "-p", "i=mul-2"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == [{"id": "mul-2"}]
    # a value that would break a pasted string is just a value when bound
    r = runner.invoke(cli, ["--workspace", ws, "sql", "-f", "csv", "select count(*) from traces where source = $s",
                            "-p", "s=x' or '1'='1"])
    assert r.output.splitlines()[1] == "0"


def test_sql_formats_and_stdin(loaded, tmp_path):
    runner, ws = loaded
    r = runner.invoke(cli, ["--workspace", ws, "sql", "-f", "csv", "-"], input="select 1 as a, 'x' as b")
    assert r.output.splitlines() == ["a,b", "1,x"]
    out = tmp_path / "t.parquet"
    r = runner.invoke(cli, ["--workspace", ws, "sql", "-f", "parquet", "-o", str(out), "select * from traces"])
    assert r.exit_code == 0, r.output
    import pyarrow.parquet as pq
    assert pq.read_table(out).num_rows == 6
    r = runner.invoke(cli, ["--workspace", ws, "sql", "select domain, count(*) from traces group by all"])
    assert "math" in r.output and r.exit_code == 0
    r = runner.invoke(cli, ["--workspace", ws, "sql", "-f", "json", "select metadata from traces limit 1"])
    assert isinstance(json.loads(r.output)[0]["metadata"], dict)


def test_sql_is_read_only_by_default(loaded):
    runner, ws = loaded
    r = runner.invoke(cli, ["--workspace", ws, "sql", "create table scratch as select 1"])
    assert r.exit_code != 0 and "--write" in r.output
    r = runner.invoke(cli, ["--workspace", ws, "sql", "--write", "create table scratch as select 1 as x"])
    assert r.exit_code == 0, r.output


def test_sql_errors_are_one_clear_line(loaded):
    runner, ws = loaded
    r = runner.invoke(cli, ["--workspace", ws, "sql", "select nope from traces"])
    assert r.exit_code == 1 and "SQL error" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["--workspace", ws, "sql", "--query", "no_such_query"])
    assert r.exit_code == 1 and "quarantine_summary" in r.output


def test_lock_held_by_another_process_is_reported(loaded):
    import subprocess
    import sys
    import time

    runner, ws = loaded
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import duckdb,time; c=duckdb.connect({str(Path(ws) / 'catalog.duckdb')!r}); print('ok', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        t0 = time.monotonic()
        r = runner.invoke(cli, ["--workspace", ws, "sql", "select 1"])
        assert r.exit_code == 1 and "locked by another process" in r.output
        assert time.monotonic() - t0 < 15
    finally:
        holder.kill()


def test_workspace_env_var_and_global_option(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAENGINE_WORKSPACE", str(tmp_path / "from-env"))
    r = CliRunner().invoke(cli, ["init"])
    assert r.exit_code == 0 and (tmp_path / "from-env" / "catalog.duckdb").exists()


def _commands(group, prefix=()):
    import click
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


def test_every_command_has_help_with_examples():
    import click
    missing = []
    for path, cmd in _commands(cli):
        if isinstance(cmd, click.Group):
            continue
        if "Example" not in (cmd.help or ""):
            missing.append(" ".join(path))
    assert not missing, f"commands without examples in --help: {missing}"


def test_every_command_is_in_the_readme():
    import click
    readme = (ROOT / "README.md").read_text()
    missing = [" ".join(p) for p, c in _commands(cli) if not isinstance(c, click.Group) and f"dataengine {' '.join(p)}" not in readme]
    assert not missing, f"README does not document: {missing}"


def test_config_show_prints_defaults():
    r = CliRunner().invoke(cli, ["config", "show"])
    assert r.exit_code == 0 and "shard_rows:" in r.output
