"""`dataengine filter`, `tune` and `sample` end to end on real traces."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from dataengine.cli import cli

QWQ = "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"


@pytest.fixture(scope="module")
def ws(shared_data, tmp_path_factory):
    """QwQ/R1-distill gsm8k traces (includes the real "per生长周期" case), filtered once."""
    src = tmp_path_factory.mktemp("src") / "gsm8k.jsonl"
    with open(shared_data / QWQ, encoding="utf-8") as f, open(src, "w", encoding="utf-8") as out:
        for line in f:
            if json.loads(line)["benchmark"] == "gsm8k":
                out.write(line)
    ws = str(tmp_path_factory.mktemp("cli") / "ws")
    r = CliRunner().invoke(cli, ["--workspace", ws, "ingest", str(src), "--map", "prompt=question",
                                 "--map", "completion=response", "--map", "model=thinking_model",
                                 "--think-format", "prompt_opened", "--domain", "math"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["--workspace", ws, "filter", "--processes", "1"])
    assert r.exit_code == 0, r.output
    assert "passed every filter" in r.output and "language_mixing:foreign_script_words_above_max" in r.output
    return ws


def test_filter_rerun_has_nothing_left_and_only_runs_one_filter(ws):
    r = CliRunner().invoke(cli, ["--workspace", ws, "filter"])
    assert r.exit_code == 0 and ": 0 traces" in r.output
    r = CliRunner().invoke(cli, ["--workspace", ws, "filter", "--only", "nope"])
    assert r.exit_code != 0 and "known: format" in r.output


def test_tune_prints_pass_rates_per_step_and_group_and_writes_a_plot(ws):
    from pathlib import Path

    r = CliRunner().invoke(cli, ["--workspace", ws, "tune", "readability", "--sweep", "max_paragraph_words=50:250:50", "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    overall = [x for x in rows if x["group"] == "all"]
    assert [x["value"] for x in overall] == [50, 100, 150, 200, 250]
    rates = [x["pass_rate"] for x in overall]
    assert rates == sorted(rates) and rates[0] < rates[-1]  # a looser limit never passes fewer
    assert {x["group"] for x in rows} >= {"all", "domain=math"}
    assert (Path(ws) / "artifacts" / "tune_readability_max_paragraph_words.png").stat().st_size > 5000
    r = CliRunner().invoke(cli, ["--workspace", ws, "tune", "language_mixing", "--sweep", "max_foreign_script_words=0:4:4", "--no-plot"])
    # one table per grouping: the language table's title names it, its columns are the languages
    assert r.exit_code == 0 and "per language" in r.output and re.search(r"┃\s+en ┃", r.output), r.output
    r = CliRunner().invoke(cli, ["--workspace", ws, "tune", "format", "--sweep", "bogus=1:2:1"])
    assert r.exit_code != 0 and "max_completion_chars" in r.output


def test_sample_highlights_the_offending_span(ws):
    r = CliRunner().invoke(cli, ["--workspace", ws, "sample", "--reason", "foreign_script_words_above_max", "-n", "5"])
    assert r.exit_code == 0, r.output
    assert "生长周期" in r.output and "reasoning[" in r.output
    r = CliRunner().invoke(cli, ["--workspace", ws, "sample", "--reason", "no_such_reason"])
    assert r.exit_code != 0 and "think_not_closed" in r.output
