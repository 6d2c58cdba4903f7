"""`tune` on real traces (R1-distill / QwQ): at 80 columns no header is cut, and the traces it
names at the margin really change their decision between the two values it gives."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dataengine.cli import cli


def test_tune_fits_80_columns_and_names_traces_at_the_margin(tmp_path, shared_data):
    runner = CliRunner(env={"COLUMNS": "80"})
    ws = str(tmp_path / "ws")
    traces = shared_data / "traces" / "thinking_llms_interp" / "r1distill_qwq_benchmark_traces.jsonl"
    r = runner.invoke(cli, ["--workspace", ws, "ingest", str(traces), "--map", "prompt=question",
                            "--map", "completion=response", "--map", "domain=benchmark",
                            "--think-format", "prompt_opened"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--workspace", ws, "filter", "--only", "readability", "--processes", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--workspace", ws, "tune", "readability", "--sweep",
                            "max_paragraph_words=100:600:50", "--no-plot"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    assert "…" not in r.output  # no header cut to "doma…"
    for domain in ("gsm8k", "math500"):
        assert domain in r.output
    margin = [lines[i - 1].split() for i, line in enumerate(lines) if line.startswith("    flips between")]
    assert margin, r.output
    # each named trace passes at one side of its flip and fails at the other
    sweep = runner.invoke(cli, ["--workspace", ws, "sql", "-f", "json",
                                "select trace_id, scores from filter_results where filter = 'readability'"])
    stored = {row["trace_id"]: row["scores"] for row in json.loads(sweep.output)}
    from dataengine.config import load_config
    from dataengine.filter_tuning import margin_traces
    from dataengine.store import Workspace

    current, found = margin_traces(Workspace.open(ws), load_config(None), "readability", "max_paragraph_words",
                                   [100.0 + 50 * i for i in range(11)])
    assert [m.trace_id for m in found] == [parts[0] for parts in margin]
    for m in found:
        assert m.trace_id in stored and (m.flip[0] in m.passes_at) != (m.flip[1] in m.passes_at)
