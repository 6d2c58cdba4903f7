"""The HTML report: one self-contained page (inline CSS, JS, SVG; no network) over a workspace.

>>> build_report(Workspace.open("workspace"), "report.html")   # doctest: +SKIP
PosixPath('report.html')

Figures come from the SQL in `sql/report/`; the page embeds them as JSON, plus a sample of the
stored filter scores so its sliders can re-decide verdicts live (`data.collect`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2

from dataengine.config import section
from dataengine.report.data import SliderSpec, collect, default_sliders
from dataengine.store import Workspace

__all__ = ["ReportConfig", "SliderSpec", "build_report", "render_html"]


@section("report")
@dataclass
class ReportConfig:
    out: str | None = field(default=None, metadata={"path": True, "help": "report path; default <workspace>/artifacts/report.html"})
    mix_id: str | None = field(default=None, metadata={
        "help": "mix the report shows (membership, counts, quota); default: the exported one, else the latest"})
    sample_size: int = field(default=2000, metadata={"help": "traces whose stored scores the page's sliders re-decide"})
    bins: int = field(default=30, metadata={"help": "bins of the length histograms"})
    sliders: list[SliderSpec] = field(
        default_factory=default_sliders,
        metadata={"help": "threshold sliders: {filter, score, op ('>=' or '<='), value, reasons: [...], param}; "
                          "value defaults to filter.<filter>.<param> of the newest filter run"},
    )

    def validate(self) -> None:
        if self.sample_size < 1 or self.bins < 2:
            raise ValueError("sample_size must be >= 1 and bins >= 2")
        for s in self.sliders:
            if s.op not in (">=", "<="):
                raise ValueError(f"slider {s.filter}.{s.score}: op must be '>=' or '<=', got {s.op!r}")


def default_report_path(ws: Workspace) -> Path:
    return ws.artifacts / "report.html"


def render_html(data: dict) -> str:
    """The page for `data` (what `collect` returns)."""
    files = resources.files("dataengine.report")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(files.joinpath("template.html").read_text(encoding="utf-8"))
    # JSON inside <script>: "</" would end the element, so it is escaped; the JSON stays valid.
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return template.render(
        title=Path(data["workspace"]).name,
        workspace=data["workspace"],
        generated_at=data["generated_at"],
        css=_markup(files.joinpath("report.css").read_text(encoding="utf-8")),
        js=_markup(files.joinpath("report.js").read_text(encoding="utf-8")),
        data_json=_markup(blob),
    )


def _markup(text: str):  # type: ignore[no-untyped-def]
    from markupsafe import Markup

    return Markup(text)  # noqa: S704 - our own files and JSON with "</" escaped, not user HTML


def build_report(
    ws: Workspace,
    out_path: str | os.PathLike[str] | None = None,
    cfg: ReportConfig | None = None,
) -> Path:
    """Write the report of `ws` to `out_path` (default `<workspace>/artifacts/report.html`)."""
    cfg = cfg or ReportConfig()
    out = Path(out_path or cfg.out or default_report_path(ws))
    data = collect(ws, sample_size=cfg.sample_size, bins=cfg.bins, sliders=[SliderSpec(**s.__dict__) for s in cfg.sliders],
                   mix_id=cfg.mix_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render_html(data), encoding="utf-8")
    os.replace(tmp, out)
    return out
