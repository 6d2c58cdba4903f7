"""The whole pipeline on every real trace file and SFT set in ../shared/data: the `cold_start` and
`rejection_sampling` steps from filter to export, judged on what reaches the export.

Filter and verify (the costly steps, the same in both pipelines) run once on a shared workspace;
each pipeline then runs its remaining steps on its own copy, through the stage registry the flows
use (`dataengine.pipeline.resolve_stage`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataengine.config import load_config_dict
from dataengine.ingest import IngestOptions, ingest
from dataengine.mix.sft_ingest import ingest_sft
from dataengine.pipeline import PIPELINES, resolve_stage
from dataengine.store import Workspace

pytestmark = pytest.mark.slow

SKY_WITH_ANSWER = {"prompt": "question", "completion": "code", "reference_answer": "answer"}
TRACES: list[tuple[str, dict, dict]] = [
    *[(f"traces/sky_t1/{name}", SKY_WITH_ANSWER, {"domain": "math"}) for name in (
        "aime24__Sky-T1-math-correct-5K-32B-ckpt140.jsonl", "aime24__Sky-T1-math-reflection-1.0-32B.jsonl",
        "amc23__Sky-T1-math-correct-5K-14B.jsonl", "amc23__Sky-T1-math-corrupt-0.5-32B.jsonl",
        "math500__Qwen2.5-Math-7B-short-cot-baseline.jsonl", "math500__Sky-T1-math-correct-5K-27B.jsonl",
        "math500__Sky-T1-math-correct-5K-32B-SHORT-cot.jsonl")],
    # Minerva rows have no clean `answer`: the gold is `gt`.
    ("traces/sky_t1/minerva__Sky-T1-math-wrong-5K-27B.jsonl",
     {"prompt": "question", "completion": "code", "reference_answer": "gt"}, {"domain": "math"}),
    ("traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl",
     {"prompt": "question", "completion": "response", "reference_answer": "gold_answer", "model": "thinking_model"},
     {"domain": "math", "think_format": "prompt_opened"}),
    ("traces/thinking_llms_interp/r1_distill_llama8b_misc_prompts_500.json",
     {"prompt": "question", "completion": "full_response"}, {"completion_after": "<｜Assistant｜>"}),
    ("traces/huatuo_o1_medical_cot_demo200.json",
     {"prompt": "Question", "reasoning": "Complex_CoT", "answer": "Response", "reference_answer": "Ground-True Answer"},
     {"domain": "medical"}),
    ("traces/s1k_gemini_5rows_curator.parquet",
     {"prompt": "question", "reasoning": "gemini_thinking_trajectory", "answer": "gemini_attempt",
      "reference_answer": "solution"}, {"domain": "math"}),
    ("traces/reason_tool_use_demo_50_llamafactory.jsonl", {}, {"domain": "tool_use"}),
]
SFT = sorted(p.name for p in (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sft").iterdir()) or [
    "alpaca_en_demo_llamafactory.json"]

CONFIG = {
    "verify": {"math_workers": 2, "batch_size": 512},
    "select": {"k": 1, "policy": "shortest", "selection": "rs"},
    "decontaminate": {"benchmarks": {
        "math500": {"path": "benchmarks/math500_limo.jsonl"}, "gsm8k": {"path": "benchmarks/gsm8k_test.jsonl"},
        "aime24": {"path": "benchmarks/aime24_qwq.jsonl"}}},
    "mix": {"reasoning": 400, "non_reasoning": 300, "shortfall": "fill"},
    "export": {"formats": ["jsonl"]},
}


def _config(shared_data: Path) -> dict:
    cfg = json.loads(json.dumps(CONFIG))
    for spec in cfg["decontaminate"]["benchmarks"].values():
        spec["path"] = str(shared_data / spec["path"])
    return cfg


@pytest.fixture(scope="module")
def verified(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every real trace file and SFT set ingested, filtered and verified once."""
    root = tmp_path_factory.mktemp("real") / "ws"
    ws = Workspace.init(root)
    for rel, mapping, opts in TRACES:
        rep = ingest(ws, shared_data / rel, IngestOptions(mapping=mapping, **opts))
        assert rep.reconciles and rep.taken > 0, rep.summary()
    for name in SFT:
        ingest_sft(ws, shared_data / "sft" / name)
    cfg = load_config_dict(_config(shared_data))
    resolve_stage("filter")(ws, cfg)
    counts = resolve_stage("verify")(ws, cfg)
    assert counts["skipped_non_reasoning"] > 4000
    return root


def _run(pipeline: str, src: Path, dst: Path, shared_data: Path, **mix: object) -> tuple[Workspace, dict]:
    shutil.copytree(src, dst)
    ws = Workspace.open(dst)
    raw = _config(shared_data)
    raw["mix"].update(mix)
    cfg = load_config_dict(raw)
    steps = list(PIPELINES[pipeline])
    out: dict = {}
    for step in steps[steps.index("verify") + 1:]:
        fn = resolve_stage(step)
        out[step] = fn(ws, cfg, dst.parent / f"{pipeline}-export") if step == "export" else fn(ws, cfg)
    return ws, out


def _exported(out_dir: Path) -> list[dict]:
    rows = []
    for p in sorted(out_dir.rglob("*.jsonl")):
        rows += [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    return rows


def test_rejection_sampling_exports_only_selected_reasoning(verified: Path, shared_data: Path, tmp_path: Path):
    ws, out = _run("rejection_sampling", verified, tmp_path / "rs", shared_data)
    assert out["mix"]["selection"] == "rs"
    rows = _exported(tmp_path / "rejection_sampling-export")
    reasoning = {r["trace_id"] for r in rows if r["bucket"] == "reasoning"}
    plain = [r for r in rows if r["bucket"] == "non_reasoning"]
    assert reasoning and plain
    selected = {r[0] for r in ws.query("select trace_id from selected_traces where selection = 'rs'").fetchall()}
    assert reasoning <= selected
    # every exported reasoning trace was verified correct and passed its filters
    bad = ws.query("select count(*) from traces t join verified_traces v using (trace_id) "
                   "where t.trace_id in (select unnest($ids)) and not v.is_correct", {"ids": sorted(reasoning)}).fetchone()[0]
    assert bad == 0
    # no cut-off chain of thought reached the export (finer truncation verdicts are the filters')
    open_or_cut = ws.query("select count(*) from traces where trace_id in (select unnest($ids)) "
                           "and (not coalesce(think_closed, false) or coalesce(finish_reason, 'stop') = 'length' "
                           "or answer = '')", {"ids": sorted(reasoning)}).fetchone()[0]
    assert open_or_cut == 0
    # nor an answer that stops mid-sentence, mid-formula or in a partial token (the format filter's
    # truncation verdicts, checked here on the exported text itself)
    from filters.truncation import truncation_reason

    answers = ws.query("select trace_id, answer from traces where trace_id in (select unnest($ids))",
                       {"ids": sorted(reasoning)}).fetchall()
    cut = [(tid, reason) for tid, a in answers if (reason := truncation_reason(a or "")[0]) is not None]
    assert cut == []
    # buckets are scored by their own profile: no SFT row is asked for a think block or a boxed
    # answer, and every exported non-reasoning row passed its (non-reasoning) filters
    wrong_profile = ws.query("select count(*) from filter_results f join traces t using (trace_id) "
                             "where t.metadata->>'bucket' = 'non_reasoning' "
                             "and f.reason in ('no_think_block', 'think_not_closed', 'missing_final_answer')").fetchone()[0]
    assert wrong_profile == 0
    plain_failed = ws.query("select count(*) from filter_results where trace_id in (select unnest($ids)) and not passed",
                            {"ids": sorted(r["trace_id"] for r in plain)}).fetchone()[0]
    assert plain_failed == 0
    # non-reasoning rows were skipped by the verifiers, never graded against a missing reference
    graded = ws.query("select count(*) from verifications v join traces t using (trace_id) "
                      "where t.metadata->>'bucket' = 'non_reasoning' and v.details->>'reason' in ('no_tests', 'no_reference')"
                      ).fetchone()[0]
    assert graded == 0
    # shortest, k=1: the exported trace of a prompt is its shortest verified, filter-passing one
    assert out["select"]["out"] == len(selected)
    # the funnel counts what reached the export, per bucket
    from dataengine.report.data import collect

    data = collect(ws, summary_only=True)
    funnel = {b: {s["step"]: s["n"] for s in f} for b, f in data["funnel_by_bucket"].items()}
    assert funnel["reasoning"]["in the mix"] == len(reasoning) <= funnel["reasoning"]["selected (rejection sampling)"]
    assert data["selection_used"] == "rs"


def test_cold_start_exports_and_shortfall_fail_exits_1_when_short(verified: Path, shared_data: Path, tmp_path: Path):
    ws, out = _run("cold_start", verified, tmp_path / "cs", shared_data)
    rows = _exported(tmp_path / "cold_start-export")
    assert out["mix"]["selection"] is None  # cold start has no select step
    assert {r["bucket"] for r in rows} == {"reasoning", "non_reasoning"}
    qualified = sum(out["mix"]["qualified"]["reasoning"].values())
    # the same pool with a quota it cannot meet: `--shortfall fail` exits 1 and lists the shortfall
    from dataengine.cli import cli

    r = CliRunner().invoke(cli, ["--workspace", str(tmp_path / "cs"), "mix", "--reasoning", str(qualified + 100),
                                 "--non-reasoning", "10", "--shortfall", "fail", "--json"])
    assert r.exit_code == 1, r.output
    short = json.loads(r.output)["shortfall"]
    assert sum(s["missing"] for s in short if s["bucket"] == "reasoning" and s["domain"] == "*") == 100
