"""References per trace: a trace is graded against its own input row's reference, disagreements
between sources are listed in `reference_conflicts`, and unmapped input fields stay in metadata.

Real rows: Sky-T1's MATH-500 file (mangled `gt`, clean `answer`) ingested first, then the
R1-Distill/QwQ MATH-500 traces of the same problems with their own gold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataengine import sqlfiles
from dataengine.config import load_config_dict
from dataengine.ingest import IngestOptions, ingest
from dataengine.verify.stage import run_verify

SKY = "traces/sky_t1/math500__Sky-T1-math-correct-5K-27B.jsonl"
R1 = "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"
SKY_MAP = {"prompt": "question", "completion": "code", "reference_answer": "gt"}
R1_MAP = {"prompt": "question", "completion": "response", "reference_answer": "gold_answer",
          "model": "thinking_model", "domain": "benchmark"}


def _ingest_both(ws, shared_data: Path, r1_path: Path | None = None):  # type: ignore[no-untyped-def]
    ingest(ws, shared_data / SKY, IngestOptions(mapping=SKY_MAP, domain="math"))
    if r1_path is None:
        return ingest(ws, shared_data / R1, IngestOptions(mapping=R1_MAP, think_format="prompt_opened"))
    mapping = {k: v for k, v in R1_MAP.items() if k != "domain"}
    return ingest(ws, r1_path, IngestOptions(mapping=mapping, domain="math", think_format="prompt_opened"))


def test_each_trace_keeps_its_own_reference_and_conflicts_are_listed(ws, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    report = _ingest_both(ws, shared_data)
    golds = {}
    for line in (shared_data / R1).read_text().splitlines():
        row = json.loads(line)
        golds.setdefault(row["question"], set()).add(row["gold_answer"])
    rows = ws.query(sqlfiles.load("verify/candidates"), {"redo": True}).fetchall()
    cols = [d[0] for d in ws.query(sqlfiles.load("verify/candidates"), {"redo": True}).description]
    cand = [dict(zip(cols, r)) for r in rows]
    r1_math = [c for c in cand if c["domain"] == "math500"]
    assert len(r1_math) == 350
    # the prompt row holds Sky-T1's gt (ingested first); 65 of the 350 R1/QwQ golds differ from it
    differ = sum(c["reference_answer"] != ws.query("select reference_answer from prompts where prompt_id = $p",
                                                   {"p": c["prompt_id"]}).fetchone()[0] for c in r1_math)
    assert differ == 65
    # verify reads each trace's own gold
    assert all(c["reference_answer"] in golds[c["prompt"]] for c in r1_math)
    # Sky-T1's traces still use Sky-T1's gt
    sky = ws.query("select count(*) from traces t join prompts p using (prompt_id) where t.source like 'math500__%' "
                   "and t.metadata->>'reference_answer' = p.reference_answer").fetchone()[0]
    assert sky == 500
    # the disagreements are listed (not resolved) and counted in the run summary
    n_conflicts = ws.query("select count(*) from reference_conflicts").fetchone()[0]
    assert report.reference_conflicts == n_conflicts >= 15
    assert "reference_conflicts view" in report.summary()
    mangled = ws.query("select refs from reference_conflicts where list_contains(refs, '10,80')").fetchone()
    assert mangled and "10,\\!080" in mangled[0]


@pytest.mark.slow
def test_verify_grades_against_the_traces_own_gold(ws, shared_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Only the finished R1/QwQ MATH-500 rows whose gold differs from Sky-T1's: a small, real verify run.
    from dataengine.verify.math import grade_math

    sky_gt = {json.loads(x)["question"]: json.loads(x)["gt"] for x in (shared_data / SKY).read_text().splitlines()}
    rows = [json.loads(x) for x in (shared_data / R1).read_text().splitlines()]
    picked = [r for r in rows if r["benchmark"] == "math500" and r["has_think_close"] is True
              and sky_gt.get(r["question"], r["gold_answer"]) != r["gold_answer"]]
    assert len(picked) >= 20
    sub = tmp_path / "r1_sub.jsonl"
    sub.write_text("".join(json.dumps(r) + "\n" for r in picked))
    _ingest_both(ws, shared_data, sub)
    counts = run_verify(ws, load_config_dict({"verify": {"math_workers": 1}}))
    assert counts["reference_conflicts"] >= 10
    got = ws.query("select v.verdict, t.metadata->>'reference_answer', t.answer "
                   "from verifications v join traces t using (trace_id) where t.source = 'r1_sub.jsonl'").fetchall()
    assert len(got) == len(picked)
    assert {ref for _v, ref, _a in got} <= {r["gold_answer"] for r in picked}
    own = sum(v == "correct" for v, _r, _a in got)
    # The same answers graded against the prompt row's (Sky-T1's mangled) gold: what verify did before.
    by_answer = {r["gold_answer"]: sky_gt[r["question"]] for r in picked}
    against_sky = sum(grade_math(by_answer[ref], answer).verdict == "correct" for _v, ref, answer in got)
    diffs = [(ref, by_answer[ref], v, grade_math(by_answer[ref], a).verdict) for v, ref, a in got if grade_math(by_answer[ref], a).verdict != v]
    assert own > against_sky, (own, against_sky, diffs)


def test_unmapped_fields_stay_in_metadata(ws, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(ws, shared_data / SKY, IngestOptions(mapping=SKY_MAP, domain="math"))
    first = json.loads((shared_data / SKY).read_text().splitlines()[0])
    meta = ws.query("select t.metadata from traces t join prompts p using (prompt_id) where p.prompt = $q",
                    {"q": first["question"]}).fetchone()[0]
    meta = json.loads(meta) if isinstance(meta, str) else meta
    # Sky-T1's clean `answer` is kept (it is not the completion's answer part), with the other fields
    assert {"answer", "gt_cot", "solution", "level", "idx", "pred", "score"} <= set(meta)
    assert meta["answer"] == first["answer"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert meta["reference_answer"] == first["gt"]
