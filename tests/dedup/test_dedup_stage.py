"""The dedup and decontaminate stages end to end on a workspace of real traces with planted duplicates."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from dataengine.cli import cli
from dataengine.config import load_config_dict
from dataengine.dedup.stage import run_decontaminate, run_dedup
from dataengine.records import Prompt, Trace
from tests.dedup.dedup_fixtures import mutate, real_traces


@pytest.fixture()
def planted(ws, shared_data):
    """300 real traces, plus: an exact duplicate (case/whitespace), a near duplicate, a near-duplicate
    prompt from another source with a near-duplicate trace, and a copy under an unrelated prompt."""
    rng = random.Random(7)
    rows = [r for r in real_traces(shared_data) if len(r["response"]) > 3000][:300]
    prompts: dict[str, Prompt] = {}
    traces: list[Trace] = []
    for i, r in enumerate(rows):
        p = prompts.setdefault(r["question"], Prompt(r["question"], source="bench_traces", domain="math"))
        traces.append(Trace(p.prompt_id, r["response"], sample_idx=i, model=r["thinking_model"], think_format="prompt_opened"))
    x, y, z = traces[0], traces[1], traces[2]
    py = next(p for p in prompts.values() if p.prompt_id == y.prompt_id)
    exact = Trace(x.prompt_id, "  " + x.completion.upper().replace(" ", "   "), sample_idx=10_001, model="copy")
    near = Trace(x.prompt_id, mutate(x.completion, 0.01, rng), sample_idx=10_002, model="copy")
    # The same problem from another dataset: punctuation and a prefix differ.
    other_source = Prompt("Problem: " + py.prompt.replace(",", " ,") + " Show your work.", source="other_dataset")
    near_other = Trace(other_source.prompt_id, mutate(y.completion, 0.01, rng), sample_idx=0, model="copy")
    # A near-copy of z's trace under an unrelated prompt: traces are compared within a prompt only.
    unrelated = Prompt("Unrelated question about something else entirely, asked once.", source="other_dataset")
    copy_elsewhere = Trace(unrelated.prompt_id, z.completion, sample_idx=0, model="copy")
    prompts["other"], prompts["unrelated"] = other_source, unrelated
    all_traces = traces + [exact, near, near_other, copy_elsewhere]
    ws.write_shard("prompts", [p.to_row() for p in prompts.values()])
    half = len(all_traces) // 2
    ws.write_shard("traces", [t.to_row() for t in all_traces[:half]])
    ws.write_shard("traces", [t.to_row() for t in all_traces[half:]])
    # Verification says the upper-cased copy is correct and the original wrong: it must win
    # although it is longer.
    ws.write_shard("verifications", [
        {"trace_id": exact.trace_id, "verifier": "math", "verdict": "correct"},
        {"trace_id": x.trace_id, "verifier": "math", "verdict": "incorrect"},
    ])
    return {"x": x, "y": y, "z": z, "exact": exact, "near": near, "near_other": near_other,
            "copy_elsewhere": copy_elsewhere, "other_source": other_source, "py": py, "n": len(all_traces)}


def _row(ws, trace_id):
    return ws.query(
        "select exact_group, near_dup_cluster, is_representative, prompt_cluster from dedup where trace_id = $t",
        {"t": trace_id},
    ).fetchone()


def test_dedup_groups_planted_duplicates_and_keeps_one(ws, planted):
    counts = run_dedup(ws, load_config_dict({}), workers=2)
    p = planted
    assert counts["in"] == p["n"]
    assert counts["in"] == counts["out"] + counts["exact_duplicates"] + counts["near_duplicates"]
    assert counts["implied_threshold"] == pytest.approx(0.5253, abs=1e-3)

    x, exact, near = _row(ws, p["x"].trace_id), _row(ws, p["exact"].trace_id), _row(ws, p["near"].trace_id)
    assert x[0] == exact[0]  # one exact group despite case and whitespace
    assert exact[2] and not x[2]  # accepted beats rejected, even though it is longer
    assert near[1] == x[1] == exact[1] == p["exact"].trace_id  # one near-dup cluster, named by its representative
    assert not near[2]

    # prompt-level: the other dataset's copy of y's problem is in y's prompt cluster, so its
    # near-duplicate trace is clustered with y's trace
    y, near_other = _row(ws, p["y"].trace_id), _row(ws, p["near_other"].trace_id)
    assert y[3] == near_other[3]
    assert y[1] == near_other[1] and y[2] != near_other[2]
    prompt_rows = dict(ws.query("select prompt_id, near_dup_cluster from dedup_prompts").fetchall())
    assert prompt_rows[p["other_source"].prompt_id] == prompt_rows[p["py"].prompt_id]

    # the same completion under an unrelated prompt is not a duplicate: within a prompt only
    z, elsewhere = _row(ws, p["z"].trace_id), _row(ws, p["copy_elsewhere"].trace_id)
    assert z[0] != elsewhere[0] and z[2] and elsewhere[2]
    same = ws.query("select count(distinct completion_hash) from dedup where trace_id in ($a, $b)",
                    {"a": p["z"].trace_id, "b": p["copy_elsewhere"].trace_id}).fetchone()[0]
    assert same == 1  # the global completion hash still shows they are the same text

    sizes = ws.query("select kind, count(*) from dedup_cluster_sizes group by kind order by kind").fetchall()
    kinds = dict(sizes)
    assert kinds["trace_near"] >= 2 and kinds["trace_exact"] >= 1 and kinds["prompt_near"] >= 1
    run = ws.query("select status, count_in, count_out from runs where stage = 'dedup' and status <> 'running'").fetchone()
    assert run == ("ok", counts["in"], counts["out"])


def test_dedup_signature_verification_and_rerun_are_consistent(ws, planted):
    a = run_dedup(ws, load_config_dict({"dedup": {"verify": "signature", "workers": 1}}))
    b = run_dedup(ws, load_config_dict({"dedup": {"verify": "exact", "workers": 1}}))
    assert a["out"] == b["out"] and a["exact_duplicates"] == b["exact_duplicates"]
    # the newest run wins in the view: one row per trace
    assert ws.query("select count(*), count(distinct trace_id) from dedup").fetchone() == (planted["n"], planted["n"])


def test_decontaminate_marks_planted_benchmark_problems_and_dedup_keeps_them(ws, planted, shared_data):
    math500 = shared_data / "benchmarks" / "math500_limo.jsonl"
    problems = [json.loads(x) for x in open(math500, encoding="utf-8")][:5]
    planted_prompts = [Prompt("Solve this:  " + q["problem"].upper(), source="pool") for q in problems]
    ws.write_shard("prompts", [p.to_row() for p in planted_prompts])
    t = Trace(planted_prompts[0].prompt_id, "<think>ok</think>42", model="m")
    ws.write_shard("traces", [t.to_row()])
    run_dedup(ws, load_config_dict({"dedup": {"workers": 1}}))

    counts = run_decontaminate(ws, load_config_dict({}), benchmarks={"math500": str(math500)})
    hit_ids = {r[0] for r in ws.query("select prompt_id from contamination_hits where prompt_id is not null").fetchall()}
    assert {p.prompt_id for p in planted_prompts} <= hit_ids
    assert counts["prompts_hit_per_benchmark"]["math500"] == len(hit_ids)
    items = ws.query(
        "select item_id from contamination_hits where prompt_id = $p", {"p": planted_prompts[0].prompt_id}
    ).fetchall()
    assert items == [(problems[0]["unique_id"],)]
    view = ws.query("select benchmark, prompts_hit, items_hit from contamination_per_benchmark").fetchall()
    assert len(view) == 1 and view[0][0] == "math500" and view[0][1] == len(hit_ids) and view[0][2] >= 5
    contam = ws.query("select contamination from dedup where trace_id = $t", {"t": t.trace_id}).fetchone()[0]
    assert problems[0]["unique_id"] in json.loads(contam)["math500"]["items"]
    # a dedup rerun keeps the contamination it found
    run_dedup(ws, load_config_dict({"dedup": {"workers": 1}}))
    again = ws.query("select contamination from dedup where trace_id = $t", {"t": t.trace_id}).fetchone()[0]
    assert json.loads(again) == json.loads(contam)


def test_decontaminate_before_dedup_is_kept_by_dedup(ws, planted, shared_data):
    aime = shared_data / "benchmarks" / "aime24_nemo_skills.jsonl"
    problem = json.loads(open(aime, encoding="utf-8").readline())
    p = Prompt(problem["problem"], source="pool")
    t = Trace(p.prompt_id, "<think>hmm</think>204", model="m")
    ws.write_shard("prompts", [p.to_row()])
    ws.write_shard("traces", [t.to_row()])
    run_decontaminate(ws, load_config_dict({"decontaminate": {"benchmarks": {"aime24": {"path": str(aime)}}}}))
    run_dedup(ws, load_config_dict({"dedup": {"workers": 1}}))
    contam = json.loads(ws.query("select contamination from dedup where trace_id = $t", {"t": t.trace_id}).fetchone()[0])
    assert contam["aime24"]["items"] == [problem["id"]] and contam["aime24"]["ngrams"]
    prompt_contam = ws.query("select contamination from dedup_prompts where prompt_id = $p", {"p": p.prompt_id}).fetchone()[0]
    assert json.loads(prompt_contam) == contam
    # a clean rerun against the same benchmark supersedes the hit
    other = shared_data / "benchmarks" / "gsm8k_test.jsonl"
    run_decontaminate(ws, load_config_dict({}), benchmarks={"aime24": str(other)})
    assert ws.query("select contamination from dedup where trace_id = $t", {"t": t.trace_id}).fetchone()[0] is None


def test_cli_dedup_and_decontaminate(tmp_path, shared_data):
    runner = CliRunner()
    wsdir = str(tmp_path / "ws")
    src = shared_data / "traces" / "sky_t1" / "aime24__Sky-T1-math-reflection-1.0-32B.jsonl"
    r = runner.invoke(cli, ["--workspace", wsdir, "ingest", str(src), "--map", "prompt=question",
                            "--map", "completion=code", "--map", "reference_answer=gt"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--workspace", wsdir, "dedup", "--threshold", "0.8", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "bands imply 0.5253" in r.output
    aime = shared_data / "benchmarks" / "aime24_nemo_skills.jsonl"
    r = runner.invoke(cli, ["--workspace", wsdir, "decontaminate", "--benchmark", f"aime24={aime}"])
    assert r.exit_code == 0, r.output
    # Sky-T1 was evaluated on AIME 2024: every one of its 30 prompts is an AIME 2024 problem
    assert '"aime24": 30' in r.output
    r = runner.invoke(cli, ["--workspace", wsdir, "decontaminate"])
    assert r.exit_code != 0 and "no benchmarks" in r.output
    r = runner.invoke(cli, ["--workspace", wsdir, "dedup", "--bands", "200"])
    assert r.exit_code != 0 and "exceeds num_perm" in r.output


def test_dedup_on_the_reasoning_reads_it_from_its_span(ws, shared_data):
    """`dedup.text: reasoning` is stored as a span of the completion (text stored once): the
    workers read shards through read_shard_columns and find planted duplicates of the reasoning."""
    import pyarrow.parquet as pq

    rng = random.Random(3)
    rows = [r for r in real_traces(shared_data) if len(r["response"]) > 3000][:40]
    prompts = [Prompt(r["question"], source="bench_traces", domain="math") for r in rows]
    traces = [Trace(p.prompt_id, r["response"], sample_idx=i, model=r["thinking_model"], think_format="prompt_opened")
              for i, (p, r) in enumerate(zip(prompts, rows))]
    x = traces[0]
    # copies of x's reasoning under x's prompt, each with an answer of its own
    head = x.completion.split("</think>")[0]
    exact = Trace(x.prompt_id, "  " + head.upper().replace(" ", "   ") + "</think> A.", sample_idx=101,
                  model="copy", think_format="prompt_opened")
    near = Trace(x.prompt_id, mutate(head, 0.01, rng) + "</think> B.", sample_idx=102, model="copy",
                 think_format="prompt_opened")
    ws.write_shard("prompts", [p.to_row() for p in {p.prompt_id: p for p in prompts}.values()])
    ws.write_shard("traces", [t.to_row() for t in [*traces, exact, near]])

    shard = sorted((ws.root / "tables" / "traces").glob("*.parquet"))[-1]
    raw = pq.read_table(shard, columns=["reasoning", "reasoning_start"])
    assert raw.column("reasoning").null_count == raw.num_rows  # not stored again
    assert raw.column("reasoning_start").null_count == 0

    counts = run_dedup(ws, load_config_dict({"dedup": {"text": "reasoning"}}), workers=2)
    assert counts["in"] == len(traces) + 2
    rx, re_, rn = _row(ws, x.trace_id), _row(ws, exact.trace_id), _row(ws, near.trace_id)
    assert rx[0] == re_[0]  # one exact group: the reasoning matches up to case and spaces
    assert rn[1] == rx[1] == re_[1]  # one near-duplicate cluster
    assert sum(not r[2] for r in (rx, re_, rn)) == 2  # one representative kept
