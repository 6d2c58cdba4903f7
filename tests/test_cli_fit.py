"""The CLI as a new user meets it: readable summaries and --json on every stage, `status` with
stale stages, `sql -o` saying what it wrote, read commands that refuse a missing workspace, and
`init --example` copying the packaged quickstart (real traces from ../shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dataengine.cli import cli


def _ingest(runner: CliRunner, ws: str, shared_data: Path, *extra: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["--workspace", ws, "ingest", str(shared_data / "sft" / "stanford_alpaca_seed_tasks.jsonl"),
                               "--kind", "sft", *extra])


def test_stages_print_a_summary_or_json_and_status_marks_stale_stages(tmp_path, shared_data):
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    traces = sorted((shared_data / "traces" / "thinking_llms_interp").glob("*.jsonl"))[0]
    r = runner.invoke(cli, ["--workspace", ws, "ingest", str(traces), "--map", "prompt=question",
                            "--map", "completion=response", "--map", "reference_answer=gold_answer",
                            "--think-format", "prompt_opened", "--json"])
    assert r.exit_code == 0, r.output
    ingested = json.loads(r.output)
    assert ingested["rows_in"] == ingested["taken"] + ingested["already_stored"] + ingested["quarantined"] > 0
    r = runner.invoke(cli, ["--workspace", ws, "verify", "--math-workers", "1"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("verify: ") and " in -> " in r.output and "{" not in r.output  # not raw JSON
    r = runner.invoke(cli, ["--workspace", ws, "verify", "--json"])
    assert r.exit_code == 0 and isinstance(json.loads(r.output)["in"], int)
    r = runner.invoke(cli, ["--workspace", ws, "select", "-k", "1"])
    assert r.exit_code == 0 and r.output.startswith("select: ") and "{" not in r.output, r.output
    r = runner.invoke(cli, ["--workspace", ws, "status"])
    assert r.exit_code == 0 and "STALE" not in r.output, r.output
    assert "verify" in r.output and "select" in r.output and "traces " in r.output
    # new traces arrive: verify and select were computed from older inputs
    r = _ingest(runner, ws, shared_data)
    assert r.exit_code == 0, r.output
    st = json.loads(runner.invoke(cli, ["--workspace", ws, "status", "--json"]).output)
    assert set(st["stale"]) >= {"verify", "select"} and "ingest_sft" in st["stale"]["verify"]
    assert st["tables"]["traces"] > ingested["traces_written"]
    r = runner.invoke(cli, ["--workspace", ws, "status"])
    assert "STALE: newer ingest_sft" in r.output


def test_read_commands_refuse_a_missing_workspace_and_sql_out_reports(tmp_path, shared_data):
    runner = CliRunner()
    missing = tmp_path / "typo-ws"
    for args in (["sql", "select 1"], ["status"], ["report"]):
        r = runner.invoke(cli, ["--workspace", str(missing), *args])
        assert r.exit_code != 0 and "no workspace at" in r.output, (args, r.output)
    assert not missing.exists()
    ws = str(tmp_path / "ws")
    assert _ingest(runner, ws, shared_data).exit_code == 0
    out = tmp_path / "rows.parquet"
    r = runner.invoke(cli, ["--workspace", ws, "sql", "-f", "parquet", "-o", str(out), "select * from traces"])
    assert r.exit_code == 0 and f"wrote 175 rows to {out} (parquet)" in r.output, r.output


def test_init_example_copies_the_packaged_quickstart(tmp_path, monkeypatch):
    from dataengine.config import load_config

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["--workspace", "ws", "init", "--example", "quickstart"])
    assert r.exit_code == 0, r.output
    assert "next:     dataengine run examples/quickstart.yaml" in r.output
    cfg = load_config(tmp_path / "examples" / "quickstart.yaml")
    for src in cfg.section("run").non_reasoning:
        assert Path(src.path).is_file() and Path(src.path).is_relative_to(tmp_path)
    # a second init keeps what the user may have edited
    (tmp_path / "examples" / "quickstart.yaml").write_text("pipeline: rejection_sampling\n")
    r = CliRunner().invoke(cli, ["--workspace", "ws", "init", "--example", "quickstart"])
    assert "existing kept" in r.output and (tmp_path / "examples" / "quickstart.yaml").read_text() == "pipeline: rejection_sampling\n"


def test_progress_totals_are_what_the_stages_then_process(tmp_path, shared_data):
    """The bars' totals come from the stages' own candidate queries: counted first, they equal the
    traces the stage then decides (first run, rerun with nothing new, --rescore)."""
    from dataengine.cli.filter import _filter_total
    from dataengine.config import load_config
    from dataengine.filter_stage import run_filter
    from dataengine.store import Workspace

    runner = CliRunner()
    ws_dir = str(tmp_path / "ws")
    assert _ingest(runner, ws_dir, shared_data).exit_code == 0
    ws = Workspace.open(ws_dir)
    cfg = load_config(None)
    for kwargs in ({}, {}, {"rescore": True}, {"only": "format", "rethreshold": True}):
        total = _filter_total(ws, cfg, kwargs.get("only"), kwargs.get("rethreshold", False),
                              kwargs.get("rescore", False), None)
        assert total == run_filter(ws, cfg, **kwargs)["in"], kwargs


def test_run_names_a_missing_input_file_in_one_line_before_prefect_starts(tmp_path):
    import shutil

    from dataengine import example_files

    cfg = tmp_path / "quickstart.yaml"
    shutil.copy(example_files.root() / "quickstart.yaml", cfg)  # without the data files beside it
    r = CliRunner().invoke(cli, ["--workspace", str(tmp_path / "ws"), "run", str(cfg)])
    assert r.exit_code == 2
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: {cfg}: run.non_reasoning[0].path: {tmp_path / 'non_reasoning_sample.jsonl'}: "
                      "no such file (and 2 more)"], r.output
    assert not (tmp_path / "ws").exists()
