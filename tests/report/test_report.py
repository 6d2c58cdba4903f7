"""The HTML report: built from the workspace's tables, rendered by headless Chromium with no
console errors, and its sliders re-decide stored verdicts in the page."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest
from chromium_page import render

from dataengine.ingest import IngestConfig, IngestOptions, ingest
from dataengine.report import ReportConfig, SliderSpec, build_report
from dataengine.report.data import collect

ROOT = Path(__file__).resolve().parents[2]
# Screenshots stay here after the run (CI keeps the folder as test output).
OUTPUT = Path(os.environ.get("DATAENGINE_TEST_OUTPUT", ROOT / "test-output"))


def _body_attrs(dom: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", dom)
    assert tag, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(1)))


@pytest.fixture()
def scored_ws(ws, shared_data):
    """Real Sky-T1 traces, with filter rows whose scores are known (the filter stage's shape)."""
    ingest(ws, shared_data / "traces/sky_t1/math500__Sky-T1-math-correct-5K-27B.jsonl",
           IngestOptions(kind="traces", mapping={"prompt": "question", "completion": "code", "reference_answer": "gt"},
                         domain="math", language="en"), IngestConfig())
    rows = ws.query("select trace_id, length(completion) from traces order by trace_id").fetchall()
    rng = random.Random(7)
    out = []
    for trace_id, chars in rows:
        share = round(rng.random(), 3)
        out.append({"trace_id": trace_id, "filter": "language_mixing", "passed": share >= 0.3,
                    "reason": None if share >= 0.3 else "lang_mix_below_min",
                    "scores": json.dumps({"cot_target_share": share, "other_languages": {"zh": 0.1}})})
        out.append({"trace_id": trace_id, "filter": "format", "passed": chars < 9000,
                    "reason": None if chars < 9000 else "too_long_chars", "scores": json.dumps({"chars": chars})})
    ws.write_shard("filter_results", out)
    return ws


def test_empty_workspace_report_renders_every_section_as_not_run(ws, tmp_path):
    page = build_report(ws, tmp_path / "empty.html")
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    r = render(page, OUTPUT / "report-empty.png")
    assert r.console_errors == []
    attrs = _body_attrs(r.dom)
    assert attrs.get("data-rendered") == "ok", r.stderr[-2000:]
    assert r.dom.count("stage not run") >= 7


def test_report_figures_match_the_tables(scored_ws, tmp_path):
    data = collect(scored_ws, sample_size=10_000)
    n = scored_ws.query("select count(*) from traces").fetchone()[0]
    passed = scored_ws.query(
        "select count(*) from (select trace_id from filter_results group by 1 having bool_and(passed))").fetchone()[0]
    funnel = {f["step"]: f for f in data["funnel"]}
    assert funnel["traces"]["n"] == n == 500
    assert funnel["passed filters"]["n"] == passed
    assert funnel["verified correct"]["ran"] is False and funnel["verified correct"]["n"] == passed
    assert sum(data["lengths"]["chars"]["all"]) == n
    assert len(data["sample"]) == n
    # Nested values stay out of the page's sample; numbers come through.
    assert set(data["sample"][0]["f"]["language_mixing"][2]) == {"cot_target_share"}


def test_sliders_re_decide_stored_verdicts_in_the_page(scored_ws, tmp_path):
    # Start the language slider at 0.5 instead of the stored 0.3: traces rejected for
    # lang_mix_below_min are re-decided, those rejected by the format filter stay rejected.
    cfg = ReportConfig(sliders=[SliderSpec("language_mixing", "cot_target_share", ">=", 0.5, ["lang_mix_below_min"])])
    page = build_report(scored_ws, tmp_path / "report.html", cfg)
    rows = scored_ws.query("""
        select trace_id, bool_and(passed) filter (where filter = 'format') as fmt,
               max((scores->>'cot_target_share')::double) as share
        from filter_results group by 1""").fetchall()
    expected = sum(1 for _t, fmt, share in rows if fmt and share >= 0.5) / len(rows)
    r = render(page, OUTPUT / "report-sliders.png")
    assert r.console_errors == []
    attrs = _body_attrs(r.dom)
    assert attrs["data-rendered"] == "ok"
    assert float(attrs["data-live-pass-rate"]) == pytest.approx(expected)
    for title in ("Funnel", "Threshold sweeps", "Completion length, characters", "Pass rate per filter"):
        assert title in r.dom
    assert (OUTPUT / "report-sliders.png").stat().st_size > 10_000


def test_report_cli_writes_the_page(scored_ws, tmp_path):
    from click.testing import CliRunner

    from dataengine.cli import cli

    out = tmp_path / "r.html"
    res = CliRunner().invoke(cli, ["--workspace", str(scored_ws.root), "report", "--out", str(out), "--sample-size", "50"])
    assert res.exit_code == 0, res.output
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                                out.read_text(), re.S).group(1))
    assert len(data["sample"]) == 50
