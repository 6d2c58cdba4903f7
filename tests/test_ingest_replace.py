"""`ingest --replace`: a file ingested with the wrong options is re-parsed, and its new rows
supersede the old ones (the views show the newest; stale filter/verify rows go with them)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dataengine.cli import cli
from dataengine.store import Workspace

R1 = "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"
SKY = "traces/sky_t1/amc23__Sky-T1-math-corrupt-0.5-32B.jsonl"


def test_reingest_with_replace_supersedes_the_old_parse(shared_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ws_dir = str(tmp_path / "ws")
    base = ["--workspace", ws_dir, "ingest", str(shared_data / R1), "--map", "prompt=question",
            "--map", "completion=response", "--map", "model=thinking_model"]
    r = runner.invoke(cli, [*base, "--think-format", "none", "--domain", "general"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--workspace", ws_dir, "ingest", str(shared_data / SKY), "--map", "prompt=question",
                            "--map", "completion=code", "--domain", "math"])
    assert r.exit_code == 0, r.output
    ws = Workspace.open(tmp_path / "ws")
    ids = [t for (t,) in ws.query("select trace_id from traces where source like 'r1distill%' order by 1").fetchall()]
    assert len(ids) == 2158
    ws.write_shard("verifications", [{"trace_id": t, "verifier": "math", "verdict": "incorrect"} for t in ids[:100]])
    ws.write_shard("filter_results", [{"trace_id": t, "filter": "format", "passed": False} for t in ids[:100]])

    # without --replace a re-ingest changes nothing
    r = runner.invoke(cli, [*base, "--think-format", "prompt_opened", "--domain", "math"])
    assert r.exit_code == 0 and "already stored 2158" in r.output, r.output
    assert ws.query("select count(*) from traces where think_format = 'none'").fetchone()[0] == 2158

    r = runner.invoke(cli, [*base, "--think-format", "prompt_opened", "--domain", "math", "--replace"])
    assert r.exit_code == 0, r.output
    assert "replaced 2158 earlier traces" in r.output
    rows = ws.query("select count(*), count(distinct trace_id), count(*) filter (where think_format = 'prompt_opened'), "
                    "count(*) filter (where domain = 'math') from traces where source like 'r1distill%'").fetchone()
    assert rows == (2158, 2158, 2158, 2158)
    # the same ids (same prompt, sample, model, run), now with the re-parsed split
    assert [t for (t,) in ws.query("select trace_id from traces where source like 'r1distill%' order by 1").fetchall()] == ids
    assert ws.query("select count(*) from traces where source like 'r1distill%' and think_closed").fetchone()[0] == 1815
    # prompts show the newest domain; the other file's rows are untouched
    assert ws.query("select count(*) from prompts p join traces t using (prompt_id) where t.source like 'r1distill%' "
                    "and p.domain <> 'math'").fetchone()[0] == 0
    assert ws.query("select count(*) from traces where source like 'amc23%'").fetchone()[0] == 40
    # verdicts of the old parse are gone: the new parse must be scored again
    assert ws.query("select count(*) from verifications").fetchone()[0] == 0
    assert ws.query("select count(*) from filter_results").fetchone()[0] == 0
