"""The report's layout in headless Chromium at 1400 and 800 px, on real traces run through the real
filter stage: no card scrolls its content out of view (the count column of "Top rejection reasons"),
no axis label runs past its chart, no threshold sweep is drawn as an empty line, and traces without
a language tag show the language the filter detected instead of "unknown"."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile

import pytest
from chromium_page import FLAGS, chromium_binary

from dataengine.config import load_config_dict
from dataengine.filter_stage import run_filter
from dataengine.ingest import IngestConfig, IngestOptions, ingest
from dataengine.report import ReportConfig, SliderSpec, build_report
from dataengine.report.data import collect

# Runs after report.js has drawn the page; writes what it finds into <pre id="layout-check">.
CHECK = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const out = [];
  for (const c of document.querySelectorAll(".card")) {
    if (c.scrollWidth > c.clientWidth + 1) {
      const h = c.querySelector("h3");
      out.push({kind: "card-overflow", where: h ? h.textContent : "?", scroll: c.scrollWidth, width: c.clientWidth});
    }
  }
  for (const svg of document.querySelectorAll("svg")) {
    const vb = svg.viewBox.baseVal;
    for (const t of svg.querySelectorAll("text")) {
      const b = t.getBBox();
      if (b.width && (b.x < vb.x - 0.5 || b.x + b.width > vb.x + vb.width + 0.5)) {
        out.push({kind: "label-cut", text: t.textContent, x: b.x, w: b.width, chart: vb.width});
      }
    }
  }
  for (const p of document.querySelectorAll("polyline")) {
    const xs = p.getAttribute("points").split(" ").map((q) => +q.split(",")[0]);
    if (Math.max(...xs) - Math.min(...xs) < 1) out.push({kind: "empty-sweep"});
  }
  const pre = document.createElement("pre");
  pre.id = "layout-check";
  pre.textContent = JSON.stringify({problems: out, sweeps: document.querySelectorAll("polyline").length});
  document.body.append(pre);
}, 0));
</script>"""


def _layout(html: str, width: int, tmp) -> dict:  # type: ignore[no-untyped-def]
    page = tmp / f"page-{width}.html"
    page.write_text(html.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc = subprocess.run([chromium_binary(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},2400",
                               "--virtual-time-budget=8000", "--dump-dom", page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=180, env={"HOME": profile, "PATH": "/usr/bin:/bin"})
    m = re.search(r'<pre id="layout-check">(.*?)</pre>', proc.stdout, re.S)
    assert m, proc.stderr[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


@pytest.fixture(scope="module")
def real_report(tmp_path_factory, shared_data):
    from dataengine.store import Workspace

    tmp = tmp_path_factory.mktemp("layout")
    ws = Workspace.init(tmp / "ws")
    # untagged traces in English and (drifting into) Chinese; long rejection reasons; lengths in thousands
    ingest(ws, shared_data / "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl",
           IngestOptions(kind="traces", mapping={"prompt": "question", "completion": "response", "domain": "benchmark"},
                         think_format="prompt_opened"), IngestConfig())
    ingest(ws, shared_data / "traces/sky_t1/aime24__Sky-T1-math-reflection-1.0-32B.jsonl",
           IngestOptions(kind="traces", mapping={"prompt": "question", "completion": "code"}, domain="math"),
           IngestConfig())
    run_filter(ws, load_config_dict({"filter": {"processes": 1}}))
    # a slider on a numeric score every trace shares: its sweep has a single-value range
    values: dict[tuple[str, str], set] = {}
    for filt, raw in ws.query("select filter, scores::varchar from filter_results").fetchall():
        for k, v in json.loads(raw or "{}").items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                values.setdefault((filt, k), set()).add(v)
    flat = sorted(key for key, seen in values.items() if len(seen) == 1)
    assert flat, "no constant numeric score in this sample"
    sliders = [SliderSpec(filter=flat[0][0], score=flat[0][1], op="<=", value=None, reasons=[]),
               *ReportConfig().sliders]
    path = build_report(ws, tmp / "report.html", ReportConfig(sliders=sliders))
    return ws, path.read_text(encoding="utf-8"), tmp


@pytest.mark.parametrize("width", [1400, 800])
def test_nothing_is_cut_or_drawn_empty(real_report, width):
    _, html, tmp = real_report
    found = _layout(html, width, tmp)
    assert found["sweeps"] > 0
    assert found["problems"] == [], found["problems"][:10]


def test_untagged_traces_show_the_detected_language(real_report):
    ws, _, _ = real_report
    langs = {r["language"]: r["n"] for r in collect(ws)["languages"]}
    assert langs.get("unknown", 0) == 0, langs
    assert langs.get("en", 0) > 0
