"""The generate stage: resumable, crash-safe, shardable, errors quarantined, counts reconcile."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataengine.config import load_config_dict
from dataengine.engines.simserver import Faults, SimServer
from dataengine.engines.simulated import SimulatedEngine
from dataengine.generate import owner_of, resolve_rank, run_demo_prompts, run_generate
from dataengine.records import Prompt, trace_id_for

ROOT = Path(__file__).resolve().parents[1]


def _pairs(ws) -> list[tuple[str, int]]:
    return ws.query("select prompt_id, sample_idx from traces order by all").fetchall()


def _assert_exactly_once(ws, prompts: int, n: int) -> None:
    rows = ws.query(
        "select count(*), count(distinct trace_id), count(distinct (prompt_id, sample_idx)), count(distinct prompt_id),"
        " min(sample_idx), max(sample_idx) from traces").fetchone()
    assert rows == (prompts * n, prompts * n, prompts * n, prompts, 0, n - 1), rows


def test_rerun_generates_only_missing_pairs_and_counts_reconcile(ws):
    cfg = load_config_dict({"generate": {"n": 3}, "demo_prompts": {"contaminated_rate": 0.0}})
    assert run_demo_prompts(ws, cfg, 40)["out"] == 40
    first = run_generate(ws, cfg)
    assert (first["in"], first["out"], first["quarantined"], first["already_stored"]) == (120, 120, 0, 0)
    again = run_generate(ws, cfg)
    assert (again["in"], again["out"], again["already_stored"]) == (0, 0, 120)
    more = run_generate(ws, cfg, n=5)  # two more samples per prompt, nothing else
    assert (more["in"], more["out"], more["already_stored"]) == (80, 80, 120)
    _assert_exactly_once(ws, 40, 5)
    # trace ids are the documented hash of (prompt, sample, model, sampling run)
    pid, idx, tid = ws.query("select prompt_id, sample_idx, trace_id from traces limit 1").fetchone()
    assert tid == trace_id_for(pid, idx, "simulated", "default")
    # per-run token totals land in `runs`
    c = json.loads(ws.query("select counts::varchar from runs where run_id = $r", {"r": more["run_id"]}).fetchone()[0])
    assert c["completion_tokens"] > 0 and c["prompt_tokens"] > 0 and c["out"] == 80
    tokens = ws.query("select sum(completion_tokens) from traces where run_id = $r", {"r": more["run_id"]}).fetchone()[0]
    assert tokens == c["completion_tokens"]


def test_planted_defects_and_contamination_are_labelled_in_trace_metadata(ws, shared_data):
    bench = str(shared_data / "benchmarks" / "math500_limo.jsonl")
    cfg = load_config_dict({"demo_prompts": {"contaminated_rate": 0.1, "benchmark_path": bench, "seed": 5},
                            "generate": {"n": 2, "template": "cold_start"}})
    run_demo_prompts(ws, cfg, 150)
    run_generate(ws, cfg)
    rows = ws.query(
        "select p.metadata->>'kind', t.metadata->'planted_defects', t.metadata->>'synthetic', t.think_closed,"
        " t.answer, p.reference_answer, t.rendered_prompt, p.prompt from traces t join prompts p using (prompt_id)").fetchall()
    assert len(rows) == 300
    defects = [json.loads(r[1]) for r in rows]
    contaminated = [d for r, d in zip(rows, defects) if r[0] == "benchmark"]
    assert contaminated and all("benchmark_contaminated" in d for d in contaminated)
    assert all("benchmark_contaminated" not in d for r, d in zip(rows, defects) if r[0] != "benchmark")
    assert all(r[2] == "true" for r in rows)
    for r, d in zip(rows, defects):
        if not d and r[0] != "benchmark":  # clean traces of generated problems carry the exact answer
            assert r[3] is True and f"\\boxed{{{r[5]}}}" in r[4]
        # the cold-start template: one long-CoT exemplar, then the problem
        assert "Here is an example." in r[6] and "</think>" in r[6] and r[6].endswith(f"Problem: {r[7]}".strip())
    assert sum(1 for d in defects if "wrong_answer" in d) > 10


def test_engine_errors_are_quarantined_and_retried_by_the_next_run(ws):
    server = SimServer(SimulatedEngine(defect_rates={}), Faults(rate_500=0.2, rate_429=0.1, rate_malformed=0.1,
                                                                poison="POISON", seed=3))
    url = server.start()
    try:
        cfg = load_config_dict({"generate": {
            "engine": "openai", "model": "simulated", "n": 2, "batch_size": 7,
            "openai": {"base_url": url, "max_concurrency": 16, "backoff_base": 0.01, "backoff_max": 0.02, "max_retries": 8},
        }, "demo_prompts": {"contaminated_rate": 0.0}})
        run_demo_prompts(ws, cfg, 30)
        ws.write_shard("prompts", [Prompt("POISON: what is 2 + 2?", source="poison", domain="math").to_row()])
        first = run_generate(ws, cfg)
        assert (first["in"], first["out"], first["quarantined"]) == (62, 60, 2)
        q = ws.query("select source, line, reason, detail from quarantine order by line").fetchall()
        poison_id = Prompt("POISON: what is 2 + 2?").prompt_id
        assert [(s, ln, r) for s, ln, r, _ in q] == [(f"generate:{poison_id}", 0, "engine_error"), (f"generate:{poison_id}", 1, "engine_error")]
        assert "HTTP 500" in q[0][3] and "attempts: 9" in q[0][3]
        # the server recovers: the next run asks only for the two failed pairs
        server.faults.poison = None
        second = run_generate(ws, cfg)
        assert (second["in"], second["out"], second["quarantined"], second["already_stored"]) == (2, 2, 0, 60)
        _assert_exactly_once(ws, 31, 2)
    finally:
        server.stop()


def _cli(ws_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dataengine", "--workspace", str(ws_path), *args],
                            cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_run_then_rerun_gives_every_pair_exactly_once(ws, tmp_path):
    cfg_file = tmp_path / "slow.yaml"
    cfg_file.write_text("generate:\n  n: 4\n  batch_size: 5\n  simulated:\n    latency_s: 0.04\n")
    run_demo_prompts(ws, load_config_dict({}), 150)
    proc = _cli(ws.root, "generate", "--config", str(cfg_file))
    shards = ws.table_dir("traces")
    deadline = time.monotonic() + 60
    while len(list(shards.glob("generate-*.parquet"))) < 4:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = ws.query("select count(*) from traces").fetchone()[0]
    assert 0 < kept < 600 and kept % 4 == 0  # whole batches only; the one in flight is lost
    counts = run_generate(ws, load_config_dict({"generate": {"n": 4}}))
    assert counts["already_stored"] == kept and counts["out"] == 600 - kept
    _assert_exactly_once(ws, 150, 4)
    status = dict(ws.query("select status, count(*) from runs where stage = 'generate' group by all").fetchall())
    # The killed run never finished: the next run on this host saw its pid gone and recorded it failed.
    assert status == {"failed": 1, "ok": 1}


def test_two_ranks_at_once_into_one_workspace(ws, tmp_path):
    cfg_file = tmp_path / "w.yaml"
    cfg_file.write_text("generate:\n  n: 3\n  batch_size: 4\n  simulated:\n    latency_s: 0.005\n")
    run_demo_prompts(ws, load_config_dict({}), 120)
    a = _cli(ws.root, "generate", "--config", str(cfg_file), "--rank", "0", "--world-size", "2")
    b = _cli(ws.root, "generate", "--config", str(cfg_file), env={"SLURM_PROCID": "1", "SLURM_NTASKS": "2"})
    outs = [p.communicate(timeout=120) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    _assert_exactly_once(ws, 120, 3)
    by_run = ws.query("select r.counts->>'rank', t.prompt_id from traces t join runs r using (run_id)").fetchall()
    assert {r for r, _ in by_run} == {"0", "1"}
    assert all(owner_of(pid, 2) == int(rank) for rank, pid in by_run)
    assert "rank 0/2" in outs[0][0] and "rank 1/2" in outs[1][0]


def test_rank_comes_from_config_then_launcher_environment():
    assert resolve_rank(None, None, {}) == (0, 1)
    assert resolve_rank(None, None, {"RANK": "3", "WORLD_SIZE": "8"}) == (3, 8)
    assert resolve_rank(None, None, {"SLURM_PROCID": "5", "SLURM_NTASKS": "6"}) == (5, 6)
    assert resolve_rank(1, 2, {"RANK": "3", "WORLD_SIZE": "8"}) == (1, 2)
    with pytest.raises(ValueError, match="not in"):
        resolve_rank(2, 2, {})


def test_bad_generate_config_names_the_field(tmp_path):
    from dataengine.config import ConfigError, load_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("generate:\n  engine: gpt5\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: generate: engine: unknown engine 'gpt5'"):
        load_config(bad)
    bad.write_text("generate:\n  simulated:\n    defect_rates: {typo: 0.1}\n")
    with pytest.raises(ConfigError, match="typo"):
        load_config(bad)


def test_transformers_engine_through_the_stage_records_the_chat_template_prompt(ws, tmp_path):
    from dataengine.tinymodel import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny", "llama3")
    cfg = load_config_dict({"generate": {"engine": "transformers", "model": str(model), "model_name": "tiny-llama",
                                         "n": 2, "max_tokens": 8, "transformers": {"device": "cpu", "batch_size": 4}},
                            "demo_prompts": {"contaminated_rate": 0.0}})
    run_demo_prompts(ws, cfg, 6)
    c = run_generate(ws, cfg)
    assert (c["in"], c["out"], c["quarantined"]) == (12, 12, 0)
    rows = ws.query("select engine, model, rendered_prompt, completion_tokens, finish_reason from traces").fetchall()
    assert {r[0] for r in rows} == {"transformers"} and {r[1] for r in rows} == {"tiny-llama"}
    assert all(r[2].startswith("<|begin_of_text|><|start_header_id|>user") for r in rows)  # Llama-3 template
    assert all(1 <= r[3] <= 8 and r[4] in ("stop", "length") for r in rows)


def test_cli_flags_override_config_and_a_template_error_stops_before_any_write(tmp_path):
    from click.testing import CliRunner

    from dataengine.cli import cli

    ws = str(tmp_path / "ws")
    runner = CliRunner()
    assert runner.invoke(cli, ["--workspace", ws, "demo-prompts", "12"]).exit_code == 0
    r = runner.invoke(cli, ["--workspace", ws, "generate", "--engine", "simulated", "--n", "2", "--batch-size", "5"])
    assert r.exit_code == 0, r.output
    assert "in=24 pairs = written 24 + quarantined 0" in r.output
    bad = tmp_path / "t.jinja"
    bad.write_text("{{ prompt }} in {{ style }}")
    r = runner.invoke(cli, ["--workspace", ws, "generate", "--n", "3", "--template", str(bad)])
    assert r.exit_code == 1 and "style" in r.output and "Traceback" not in r.output
    from dataengine.store import Workspace

    assert Workspace.open(ws).query("select count(*) from traces").fetchone()[0] == 24
