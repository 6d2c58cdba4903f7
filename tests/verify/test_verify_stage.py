"""The verify and select stages on a real workspace: Sky-T1 math, code with hostile traces, judge,
majority vote, rejection sampling and the prompt_stats view."""

from __future__ import annotations

import json
from pathlib import Path

from dataengine.config import load_config_dict
from dataengine.ingest import IngestOptions, ingest
from dataengine.records import Prompt, Trace
from dataengine.verify.judge import Judge
from dataengine.verify.select import run_select
from dataengine.verify.stage import run_verify

SKY = ("amc23__Sky-T1-math-corrupt-0.5-32B.jsonl", "aime24__Sky-T1-math-reflection-1.0-32B.jsonl")


def _ingest_sky(ws, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    for name in SKY:
        opts = IngestOptions(kind="traces", mapping={"prompt": "question", "completion": "code", "reference_answer": "gt"},
                             domain="math")
        ingest(ws, shared_data / "traces" / "sky_t1" / name, opts)


def test_verify_stage_on_sky_t1_agrees_with_its_labels(ws, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    _ingest_sky(ws, shared_data)
    counts = run_verify(ws, load_config_dict({"verify": {"math_workers": 2, "batch_size": 16}}))
    assert counts["in"] == 70 and counts["out"] == 70 and counts["by_verifier"] == {"math": 70}
    # Streamed in chunks: one shard per chunk, so a killed run keeps what it finished.
    assert len(ws.shards("verifications")) == 5
    rows = ws.query(
        "select (t.metadata->>'score')::bool as label, v.verdict, v.details->>'reason' as reason "
        "from traces t join verifications v using (trace_id)"
    ).fetchall()
    agree = sum((verdict == "correct") == label for label, verdict, _ in rows)
    assert agree / len(rows) >= 0.9, agree
    # Every verdict carries its reason, and truncated traces are never graded.
    assert all(reason for _, _, reason in rows)
    n_open = ws.query("select count(*) from traces where not think_closed").fetchone()[0]
    n_tnc = ws.query("select count(*) from verifications where details->>'reason' = 'think_not_closed'").fetchone()[0]
    assert n_tnc == n_open > 0
    # A rerun has nothing new to verify.
    assert run_verify(ws, load_config_dict({}))["in"] == 0

    # Rejection sampling: at most k per prompt, only correct traces; pass rates per prompt.
    sel = run_select(ws, load_config_dict({"select": {"k": 1, "policy": "shortest"}}))
    assert sel["out"] == ws.query("select count(distinct prompt_id) from prompt_stats where n_correct > 0").fetchone()[0]
    bad = ws.query("select count(*) from selected_traces s join verified_traces v using (trace_id) where not v.is_correct").fetchone()
    assert bad[0] == 0
    stats = ws.query("select min(pass_rate), max(pass_rate), sum(n_traces) from prompt_stats").fetchone()
    assert stats == (0.0, 1.0, 70)


def test_journey_policy_prefers_a_corrected_mistake_and_stores_features(ws) -> None:  # type: ignore[no-untyped-def]
    p = Prompt("What is 3 + 5?", domain="math", reference_answer="8")
    plain = Trace(p.prompt_id, "<think>3 + 5 = 8.</think>The answer is \\boxed{8}.", sample_idx=0, model="m", domain="math")
    journey = Trace(p.prompt_id, "<think>So the answer is 9. Wait, let me check: 3 + 5 = 8, not 9.</think>\\boxed{8}",
                    sample_idx=1, model="m", domain="math")
    wrong = Trace(p.prompt_id, "<think>easy</think>\\boxed{9}", sample_idx=2, model="m", domain="math")
    ws.write_shard("prompts", [p.to_row()])
    ws.write_shard("traces", [t.to_row() for t in (plain, journey, wrong)])
    run_verify(ws, load_config_dict({}))
    run_select(ws, load_config_dict({"select": {"k": 1, "policy": "journey", "selection": "journey"}}))
    tid, feats = ws.query("select trace_id, features from selected_traces where selection = 'journey'").fetchone()
    assert tid == journey.trace_id
    f = json.loads(feats)
    assert f["corrected_mistake"] is True and f["wrong_intermediate"] == "9" and f["reflections"] >= 1


def test_majority_vote_pseudo_reference_is_recorded_as_such(ws) -> None:  # type: ignore[no-untyped-def]
    p = Prompt("Compute 1/2 of 1.", domain="math")  # no reference answer
    answers = ["\\boxed{\\frac{1}{2}}", "\\boxed{0.5}", "so \\boxed{1/2}", "\\boxed{2}", "<think>never finished"]
    traces = [Trace(p.prompt_id, a if a.startswith("<think>") else f"<think>hm</think>{a}", sample_idx=i, model="m",
                    domain="math") for i, a in enumerate(answers)]
    ws.write_shard("prompts", [p.to_row()])
    ws.write_shard("traces", [t.to_row() for t in traces])
    counts = run_verify(ws, load_config_dict({"verify": {"majority_min_share": 0.5, "majority_min_samples": 3}}))
    assert counts["majority_vote_prompts"] == 1
    rows = ws.query("select verdict, details->>'reference_kind' from verifications order by verdict").fetchall()
    assert sorted(v for v, _ in rows) == ["correct", "correct", "correct", "incorrect", "unparseable"]
    assert {k for _, k in rows} == {"majority_vote"}
    assert ws.query("select pseudo_reference from prompt_stats").fetchone()[0] is True
    # Traces graded only against a pseudo-reference can be kept out of a selection.
    sel = run_select(ws, load_config_dict({"select": {"allow_pseudo_reference": False}}))
    assert sel["out"] == 0 and sel["dropped_pseudo_reference"] == 3


def test_code_stage_survives_hostile_traces(ws, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    he = json.loads((shared_data / "code" / "HumanEval.jsonl").read_text().splitlines()[0])
    p = Prompt(he["prompt"], domain="code", tests=he["test"], metadata={"entry_point": he["entry_point"]})
    bodies = {
        "canonical": he["prompt"] + he["canonical_solution"],
        "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "infinite_loop": "while True:\n    pass\n",
        "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)\n",
        "no_code": None,
    }
    traces = [
        Trace(p.prompt_id, f"<think>x</think>```python\n{b}\n```" if b else "<think>x</think>I would loop.", sample_idx=i,
              model=name, domain="code")
        for i, (name, b) in enumerate(bodies.items())
    ]
    ws.write_shard("prompts", [p.to_row()])
    ws.write_shard("traces", [t.to_row() for t in traces])
    counts = run_verify(ws, load_config_dict({"verify": {"code_wall_s": 10.0, "code_parallel": 2}}))
    assert counts["in"] == 5 and counts["by_verifier"] == {"code": 5}
    got = dict(ws.query("select t.model, v.verdict from traces t join verifications v using (trace_id)").fetchall())
    assert got["canonical"] == "correct"
    assert got["fork_bomb"] in ("incorrect", "timeout")
    assert got["infinite_loop"] == "timeout"
    assert got["kill_parent"] == "incorrect"
    assert got["no_code"] == "unparseable"


def test_rule_then_judge_asks_the_judge_only_where_the_rule_failed(ws) -> None:  # type: ignore[no-untyped-def]
    from test_verify_judge import JudgeServer, engine

    server = JudgeServer()
    try:
        p = Prompt("Name the capital of France.", domain="science", reference_answer="Paris")
        q = Prompt("2+2?", domain="math", reference_answer="4")
        traces = [
            Trace(p.prompt_id, "<think>France...</think>It is paris.", sample_idx=0, model="m", domain="science"),
            Trace(q.prompt_id, "<think>2+2</think>\\boxed{4}", sample_idx=0, model="m", domain="math"),
        ]
        ws.write_shard("prompts", [p.to_row(), q.to_row()])
        ws.write_shard("traces", [t.to_row() for t in traces])
        judge = Judge(engine(server), max_retries=1, backoff_s=0.01)
        counts = run_verify(ws, load_config_dict({}), judge=judge)
        assert counts["judge_requests"] == 1  # the math trace was settled by its rule
        rows = ws.query("select verifier, verdict, judge_model from verifications order by verifier").fetchall()
        assert rows == [("judge", "correct", "judge-model"), ("math", "correct", None), ("math", "unparseable", None)]
        assert ws.query("select count(*) from verified_traces where is_correct").fetchone()[0] == 2
    finally:
        server.stop()


def test_cli_verify_and_select_and_config_validation(tmp_path: Path) -> None:
    import pytest
    from click.testing import CliRunner

    from dataengine.cli import cli
    from dataengine.config import ConfigError

    src = tmp_path / "t.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"question": "1+1?", "response": "<think>2</think>\\boxed{2}", "gold": "2"},
        {"question": "2+2?", "response": "<think>5</think>\\boxed{5}", "gold": "4"},
    ]) + "\n")
    ws = str(tmp_path / "ws")
    runner = CliRunner()
    r = runner.invoke(cli, ["--workspace", ws, "ingest", str(src), "--map", "prompt=question", "--map", "completion=response",
                            "--map", "reference_answer=gold", "--domain", "math"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--workspace", ws, "verify", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["by_verdict"]["correct"] == 1
    r = runner.invoke(cli, ["--workspace", ws, "select", "-k", "2", "--policy", "most_distinct", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["out"] == 1, r.output
    with pytest.raises(ConfigError, match="policies.math"):
        load_config_dict({"verify": {"policies": {"math": "vote"}}})
