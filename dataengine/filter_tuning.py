"""Tuning from stored scores: threshold sweeps (pass rate per step, overall and per domain and
language) and samples of rejected traces with the offending span.

Nothing here re-scores a trace: a sweep re-runs each filter's cheap `decide` over the scores in
`filter_results`, so sweeping 800k traces takes seconds per step.

>>> parse_sweep("max_paragraph_words=100:400:100")
('max_paragraph_words', [100.0, 200.0, 300.0, 400.0])
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataengine.config import PipelineConfig
from dataengine.filter_stage import FilterConfig
from dataengine.store import Workspace
from filters import get_filter, safe_decide


def parse_sweep(spec: str) -> tuple[str, list[float]]:
    """`PARAM=START:STOP:STEP` → (param, values from START to STOP inclusive)."""
    name, sep, rng = spec.partition("=")
    parts = rng.split(":")
    if not sep or not name or len(parts) != 3:
        raise ValueError(f"--sweep {spec!r}: expected PARAM=START:STOP:STEP, e.g. min_reasoning_share=0.5:1:0.05")
    try:
        start, stop, step = (float(x) for x in parts)
    except ValueError:
        raise ValueError(f"--sweep {spec!r}: START, STOP and STEP must be numbers") from None
    if step <= 0 or stop < start:
        raise ValueError(f"--sweep {spec!r}: need STEP > 0 and STOP >= START")
    n = int(round((stop - start) / step)) + 1
    if n > 1000:
        raise ValueError(f"--sweep {spec!r}: {n} steps; use a larger STEP (at most 1000 steps)")
    return name.strip(), [round(start + i * step, 10) for i in range(n)]


@dataclass
class SweepRow:
    value: float
    group: str  # "all", "bucket=non_reasoning", "domain=math", "language=en"
    traces: int
    passed: int

    @property
    def pass_rate(self) -> float:
        return self.passed / self.traces if self.traces else 0.0


def sweep(ws: Workspace, cfg: PipelineConfig, filter_name: str, param: str, values: list[float]) -> list[SweepRow]:
    """Pass rate of `filter_name` for each value of threshold `param`, from stored scores."""
    spec = get_filter(filter_name)
    fc: FilterConfig = cfg.section("filter")
    base = fc.thresholds(filter_name)
    hints = typing.get_type_hints(type(base))
    overrides = ("by_domain", "by_language", "by_bucket")
    if param not in {f.name for f in dataclasses.fields(base)} or param in overrides:
        known = [f.name for f in dataclasses.fields(base) if f.name not in overrides]
        raise ValueError(f"{filter_name} has no threshold {param!r}; thresholds: {', '.join(known)}")
    cast = int if int in typing.get_args(hints[param]) or hints[param] is int else float
    variants = [(v, dataclasses.replace(base, **{param: cast(v)})) for v in values]
    counts: dict[tuple[float, str], list[int]] = defaultdict(lambda: [0, 0])
    con = ws.connect()
    try:
        reader = con.sql(
            "select scores::varchar as scores from filter_results where filter = $f", params={"f": filter_name}
        ).to_arrow_reader(20_000)
        for rb in reader:
            for raw in rb.column("scores").to_pylist():
                s = json.loads(raw) if raw else {"error": "no stored scores"}
                # Buckets apart: a non_reasoning (SFT) row is judged by its own profile.
                groups = ("all", f"bucket={s.get('bucket') or 'reasoning'}", f"domain={s.get('domain')}",
                          f"language={s.get('language')}")
                for v, th in variants:
                    ok, _ = safe_decide(spec, s, th)
                    for g in groups:
                        c = counts[(v, g)]
                        c[0] += 1
                        c[1] += ok
    finally:
        con.close()
    if not counts:
        raise ValueError(f"no stored scores for filter {filter_name!r}: run `dataengine filter` first")
    return [SweepRow(v, g, n, p) for (v, g), (n, p) in sorted(counts.items(), key=lambda kv: (kv[0][1] != "all", kv[0][1], kv[0][0]))]


def plot_sweep(rows: list[SweepRow], filter_name: str, param: str, path: Path) -> Path:
    """A PNG of pass rate against the threshold, one line per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    by_group: dict[str, list[SweepRow]] = defaultdict(list)
    for r in rows:
        by_group[r.group].append(r)
    for group, rs in by_group.items():
        rs.sort(key=lambda r: r.value)
        ax.plot([r.value for r in rs], [r.pass_rate for r in rs], marker="o", ms=3,
                lw=2.5 if group == "all" else 1.2, label=f"{group} (n={rs[0].traces})")
    ax.set_xlabel(param)
    ax.set_ylabel("pass rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{filter_name}: pass rate by {param}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass
class RejectedSample:
    trace_id: str
    filter: str
    reason: str
    scores: dict[str, Any]
    text: str  # the part of the trace holding the span (or the reasoning)
    part: str
    span: tuple[int, int] | None


def rejected_samples(ws: Workspace, reason: str, n: int = 5, filter_name: str | None = None) -> list[RejectedSample]:
    """Up to `n` traces rejected with `reason`, each with the span that caused it (if known)."""
    sql = """
        select f.trace_id, f.filter, f.reason, f.scores::varchar as scores, t.completion, t.reasoning, t.answer
        from filter_results f join traces t using (trace_id)
        where f.reason = $reason and ($filter is null or f.filter = $filter)
        order by f.trace_id
        limit $n
    """
    rows = ws.query(sql, {"reason": reason, "filter": filter_name, "n": int(n)}).fetchall()
    out = []
    from dataengine.spans import locate_span

    for trace_id, filt, rsn, raw, completion, reasoning, answer in rows:
        scores = json.loads(raw) if raw else {}
        key = get_filter(filt).span_for_reason.get(rsn)
        texts = {"completion": completion or "", "reasoning": reasoning or "", "answer": answer or ""}
        # The filter's own span when it recorded one, else located from the reason and the text.
        span_info = locate_span(filt, rsn, scores, texts, key)
        if span_info:
            part, a, b = span_info
            out.append(RejectedSample(trace_id, filt, rsn, scores, texts.get(part, ""), part, (int(a), int(b))))
        else:
            part = "reasoning" if reasoning else "completion"
            out.append(RejectedSample(trace_id, filt, rsn, scores, texts[part], part, None))
    return out


def known_reasons(ws: Workspace) -> list[tuple[str, str, int]]:
    return ws.query("select filter, reason, count(*) from filter_results where not passed group by all order by 3 desc").fetchall()


@dataclass
class MarginTrace:
    trace_id: str
    domain: str | None
    language: str | None
    passes_at: list[float]  # the sweep values at which the trace passes
    flip: tuple[float, float]  # adjacent sweep values between which its decision changes
    reason: str | None  # its rejection reason on the failing side


def margin_traces(ws: Workspace, cfg: PipelineConfig, filter_name: str, param: str, values: list[float],
                  n: int = 5) -> tuple[float | None, list[MarginTrace]]:
    """Traces whose decision flips between two adjacent sweep values, nearest the configured
    threshold first: what moving the threshold by one step lets in or keeps out. Returns the
    configured value and up to `n` traces."""
    spec = get_filter(filter_name)
    base = cfg.section("filter").thresholds(filter_name)
    current = getattr(base, param, None)
    hints = typing.get_type_hints(type(base))
    cast = int if int in typing.get_args(hints[param]) or hints[param] is int else float
    variants = [(v, dataclasses.replace(base, **{param: cast(v)})) for v in values]
    found: list[tuple[float, str, MarginTrace]] = []
    rows = ws.query("select trace_id, scores::varchar from filter_results where filter = $f order by trace_id",
                    {"f": filter_name}).fetchall()
    for trace_id, raw in rows:
        s = json.loads(raw) if raw else {}
        decisions = [safe_decide(spec, s, th) for _, th in variants]
        for k in range(len(values) - 1):
            if decisions[k][0] != decisions[k + 1][0]:
                mid = (values[k] + values[k + 1]) / 2
                dist = abs(mid - current) if isinstance(current, (int, float)) else float(k)
                reason = next((r for ok, r in decisions if not ok), None)
                found.append((dist, trace_id, MarginTrace(trace_id, s.get("domain"), s.get("language"),
                                                          [v for v, (ok, _) in zip(values, decisions) if ok],
                                                          (values[k], values[k + 1]), reason)))
                break
    found.sort(key=lambda x: (x[0], x[1]))
    return (float(current) if isinstance(current, (int, float)) else None), [m for _, _, m in found[:n]]
