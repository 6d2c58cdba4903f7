"""`dataengine sample --reason X` shows the span that decided the verdict, for every reason that
occurs on real traces (the filter's own span, else one located from the reason)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dataengine.cli import cli
from dataengine.config import load_config_dict
from dataengine.filter_stage import run_filter
from dataengine.filter_tuning import known_reasons, rejected_samples
from dataengine.ingest import IngestOptions, ingest
from dataengine.mix.sft_ingest import ingest_sft


@pytest.fixture(scope="module")
def filtered(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from dataengine.store import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("spans") / "ws")
    ingest(ws, shared_data / "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl",
           IngestOptions(mapping={"prompt": "question", "completion": "response", "model": "thinking_model"}, domain="math"))
    ingest(ws, shared_data / "traces/thinking_llms_interp/r1_distill_llama8b_misc_prompts_500.json",
           IngestOptions(mapping={"prompt": "question", "completion": "full_response"}, completion_after="<｜Assistant｜>"))
    ingest(ws, shared_data / "traces/sky_t1/minerva__Sky-T1-math-wrong-5K-27B.jsonl",
           IngestOptions(mapping={"prompt": "question", "completion": "code"}, domain="math"))
    ingest_sft(ws, shared_data / "sft/alpaca_en_demo_llamafactory.json")
    run_filter(ws, load_config_dict({}))
    return ws


def test_every_reason_on_real_traces_has_a_span(filtered) -> None:  # type: ignore[no-untyped-def]
    reasons = [(f, r) for f, r, _n in known_reasons(filtered)]
    assert len(reasons) >= 5
    for filt, reason in reasons:
        for smp in rejected_samples(filtered, reason, 5, filt):
            assert smp.span is not None, (filt, reason, smp.trace_id)
            a, b = smp.span
            assert 0 <= a <= b <= len(smp.text), (filt, reason, smp.span, len(smp.text))
            if reason not in ("empty_answer", "empty_completion", "empty_reasoning"):
                assert b > a, (filt, reason, smp.trace_id)


def test_missing_answer_points_at_the_end_of_the_answer(filtered) -> None:  # type: ignore[no-untyped-def]
    found = rejected_samples(filtered, "missing_final_answer", 5, "format")
    assert found
    for smp in found:
        assert smp.part == "answer" and smp.span is not None and smp.span[1] == len(smp.text)


def test_sample_cli_highlights_the_span(filtered) -> None:  # type: ignore[no-untyped-def]
    reason = next(r for f, r, _n in known_reasons(filtered) if f == "format")
    r = CliRunner().invoke(cli, ["--workspace", str(filtered.root), "sample", "--reason", reason, "-n", "2"])
    assert r.exit_code == 0, r.output
    assert "no span recorded" not in r.output and "span " in r.output
