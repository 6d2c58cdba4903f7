"""Non-reasoning rows (reused SFT data) are skipped by verifiers that need a reference or tests,
and counted; the report shows the buckets apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataengine.config import load_config_dict
from dataengine.ingest import IngestOptions, ingest
from dataengine.mix.sft_ingest import ingest_sft
from dataengine.verify.stage import run_verify

SFT = ["alpaca_en_demo_llamafactory.json", "stanford_alpaca_seed_tasks.jsonl", "medical_sft_1K_medicalgpt.jsonl"]


@pytest.mark.slow
def test_sft_rows_are_skipped_and_counted_not_graded(ws, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    for name in SFT:
        ingest_sft(ws, shared_data / "sft" / name)
    ingest(ws, shared_data / "traces/sky_t1/amc23__Sky-T1-math-corrupt-0.5-32B.jsonl",
           IngestOptions(mapping={"prompt": "question", "completion": "code", "reference_answer": "gt"}, domain="math"))
    n_sft, n_code = ws.query("select count(*), count(*) filter (where domain = 'code') from traces "
                             "where metadata->>'bucket' = 'non_reasoning'").fetchone()
    n_reasoning = ws.query("select count(*) from traces where metadata->>'bucket' is null").fetchone()[0]
    assert n_code > 0  # SFT code rows exist: before, each was graded `error no_tests`
    counts = run_verify(ws, load_config_dict({"verify": {"math_workers": 1}}))
    assert counts["skipped_non_reasoning"] == n_sft
    assert counts["in"] == n_sft + n_reasoning
    graded = ws.query("select count(*) from verifications v join traces t using (trace_id) "
                      "where t.metadata->>'bucket' = 'non_reasoning'").fetchone()[0]
    assert graded == 0
    assert ws.query("select count(*) from verifications where details->>'reason' = 'no_tests'").fetchone()[0] == 0
    assert counts["by_verifier"] == {"math": n_reasoning}

    from dataengine.report.data import collect

    data = collect(ws, summary_only=False)
    assert {r["bucket"] for r in data["verdicts"]} == {"reasoning"}
    by_bucket = {b: {s["step"]: s["n"] for s in f} for b, f in data["funnel_by_bucket"].items()}
    # verification does not remove non-reasoning rows from the funnel
    assert by_bucket["non_reasoning"]["verified correct"] == n_sft
