"""Gathers the report's figures with the SQL in `sql/report/`: one dict, JSON-ready.

Every table exists in every workspace (empty shards carry the schema), so each query runs even
when its stage never did; a stage whose table is empty is reported as not run.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import duckdb

from dataengine import sqlfiles
from dataengine.store import Workspace

# Stage → the table whose rows say it ran.
STAGE_TABLES = {
    "ingest/generate": "traces",
    "filter": "filter_results",
    "verify": "verifications",
    "select": "selections",
    "dedup": "dedup",
    "mix": "mix_members",
}


@dataclass
class SliderSpec:
    """One threshold slider: a numeric score of a filter, kept when `score op value` holds.

    `reasons` are the stored rejection reasons this threshold decides; a trace rejected for one of
    them is re-decided by the slider, one rejected for any other reason stays rejected.
    """

    filter: str
    score: str
    op: str = ">="  # ">=" keeps traces at or above the threshold, "<=" at or below
    value: float | None = None  # where the slider starts; default: `param` in the filter run's config
    reasons: list[str] = field(default_factory=list)
    param: str | None = None  # the threshold's field in the `filter.<filter>` config section


# The main thresholds of the filter stage (filters/: format, readability, language_mixing), each
# with the reason its check gives. A trace's stored reason is its first failing check, so with all
# sliders of a filter at their configured values the page reproduces the stored verdicts.
DEFAULT_SLIDERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("language_mixing", "reasoning_share", ">=", "min_reasoning_share", "lang_mix_below_min"),
    ("language_mixing", "foreign_script_words", "<=", "max_foreign_script_words", "foreign_script_words_above_max"),
    ("language_mixing", "answer_share", ">=", "min_answer_share", "answer_lang_mix_below_min"),
    ("readability", "longest_paragraph_words", "<=", "max_paragraph_words", "paragraph_too_long"),
    ("readability", "top_line_repeats", "<=", "max_line_repeats", "repetition_loop"),
    ("readability", "dup_5gram_frac", "<=", "max_dup_5gram_frac", "duplicate_ngrams"),
    ("format", "completion_chars", "<=", "max_completion_chars", "too_long_chars"),
    ("format", "completion_tokens", "<=", "max_completion_tokens", "too_many_tokens"),
)


def default_sliders() -> list[SliderSpec]:
    return [SliderSpec(f, score, op, None, [reason], param) for f, score, op, param, reason in DEFAULT_SLIDERS]


def _rows(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rel = con.execute(sqlfiles.load(f"report/{name}"), params or {})
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r)) for r in rel.fetchall()]


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return v


def _clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in rows]


def collect(
    ws: Workspace,
    sample_size: int = 2000,
    bins: int = 30,
    sliders: list[SliderSpec] | None = None,
    summary_only: bool = False,
    mix_id: str | None = None,
) -> dict[str, Any]:
    """Every figure the report shows, as plain JSON-ready values.

    `summary_only` stops after the funnel, verdicts and mix (what flow artifacts show). `mix_id`:
    the mix whose membership, counts and quota are shown (default: the exported one, else the latest).
    """
    con = ws.connect()
    try:
        if mix_id is None:
            mix_id = con.execute(sqlfiles.load("report/report_mix")).fetchall()[0][0]
        elif not con.execute("select count(*) from runs where stage = 'mix' and config->>'mix_id' = $m",
                             {"m": mix_id}).fetchall()[0][0]:
            raise ValueError(f"mix_id {mix_id!r}: no mix run of that id in {ws.root}")
        flags = con.sql(sqlfiles.load("report/trace_flags"), params={"mix_id": mix_id}).to_arrow_table()
        con.register("flags", flags)
        rows = {r["tbl"]: r["n"] for r in _rows(con, "stage_rows")}
        ran = {stage: rows[table] > 0 for stage, table in STAGE_TABLES.items()}
        out: dict[str, Any] = {
            "workspace": str(ws.root),
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "table_rows": rows,
            "ran": ran,
            "mix_id": mix_id,
        }
        funnels = _rows(con, "funnel", {
            "filter_ran": ran["filter"], "verify_ran": ran["verify"], "select_ran": ran["select"],
            "dedup_ran": ran["dedup"],
        })
        steps = (
            ("traces", "generated", "ingest/generate"),
            ("passed filters", "passed_filters", "filter"),
            ("verified correct", "verified_correct", "verify"),
            ("selected (rejection sampling)", "selected", "select"),
            ("kept by dedup / decontamination", "deduplicated", "dedup"),
            ("in the mix", "in_mix", "mix"),
        )
        out["funnel"] = [{"step": "prompts", "n": rows["prompts"], "ran": rows["prompts"] > 0}] + [
            {"step": step, "n": funnels[0][key], "ran": ran[stage]} for step, key, stage in steps
        ]
        # The same steps per bucket: verify and select apply to reasoning traces only.
        out["funnel_by_bucket"] = {
            f["bucket"]: [{"step": step, "n": f[key], "ran": ran[stage]} for step, key, stage in steps]
            for f in funnels[1:]
        }
        out["selection_used"] = _selection_used(con, mix_id)
        out["verdicts"] = _clean(_rows(con, "verdicts"))
        out["mix"] = _clean(_rows(con, "mix_counts", {"mix_id": mix_id}))
        out["mix_quota"] = _mix_quota(con, mix_id)
        out["mix_excluded"] = _mix_excluded(con, mix_id)
        out["filter_pass"] = _clean(_rows(con, "filter_pass"))
        if summary_only:
            return out
        out["filter_reasons"] = _clean(_rows(con, "filter_reasons"))
        out["filter_by_domain"] = _clean(_rows(con, "filter_pass_by_group", {"group": "domain"}))
        out["filter_by_language"] = _clean(_rows(con, "filter_pass_by_group", {"group": "language"}))
        out["languages"] = _clean(_rows(con, "languages"))
        out["lengths"] = _histograms(con, bins)
        out["dedup"] = _clean(_rows(con, "dedup_summary"))[0]
        out["contamination"] = _clean(_rows(con, "contamination_by_benchmark"))
        out["runs"] = _clean(_rows(con, "runs_timeline"))
        out["sample"] = _score_sample(con, sample_size)
        out["sliders"] = [s.__dict__ for s in _sliders(out["sample"], sliders or [], _filter_config(con))]
        return out
    finally:
        con.close()


def _histograms(con: duckdb.DuckDBPyConnection, bins: int) -> dict[str, Any]:
    b = _rows(con, "length_bounds")[0]
    out: dict[str, Any] = {}
    for col, lo, hi in (("chars", b["lo"], b["hi"]), ("tokens", 0, b["hi_tokens"])):
        if col == "tokens" and not b["max_tokens"]:
            continue
        lo = float(lo or 0)
        width = max(1.0, math.ceil((float(hi or 0) - lo + 1) / bins))
        counts = _rows(con, "length_histogram", {"col": col, "lo": lo, "width": width, "bins": bins})
        by_bin = {r["bin"]: r for r in counts}
        out[col] = {
            "edges": [lo + i * width for i in range(bins + 1)],
            "all": [by_bin.get(i, {}).get("n", 0) for i in range(bins)],
            "passed": [by_bin.get(i, {}).get("passed", 0) for i in range(bins)],
        }
    return out


def _selection_used(con: duckdb.DuckDBPyConnection, mix_id: str | None) -> str | None:
    """The selection the report's mix drew its reasoning traces from (None: no selection used)."""
    row = _mix_run(con, mix_id)
    return json.loads(row[0] or "{}").get("selection_used") if row else None


def _mix_run(con: duckdb.DuckDBPyConnection, mix_id: str | None) -> tuple[str, str] | None:
    """(config, counts) of the newest successful run of `mix_id`."""
    rows = con.execute(
        "select config::varchar, counts::varchar from runs where stage = 'mix' and status = 'ok' "
        "and config->>'mix_id' = $m order by started_at desc limit 1", {"m": mix_id}
    ).fetchall()
    return rows[0] if rows else None


def _mix_quota(con: duckdb.DuckDBPyConnection, mix_id: str | None) -> dict[str, Any]:
    """Quotas the mix run asked for, read from its recorded config and counts."""
    row = _mix_run(con, mix_id)
    if not row:
        return {}
    quota: dict[str, Any] = {}
    for blob in row:
        data = json.loads(blob or "{}")
        for key in ("quota", "quotas", "buckets"):
            if isinstance(data.get(key), dict):
                quota.update({k: v for k, v in data[key].items() if isinstance(v, (int, float))})
        for key in ("reasoning", "non_reasoning"):
            if isinstance(data.get(key), (int, float)) and not isinstance(data.get(key), bool):
                quota.setdefault(key, data[key])
    return quota


def _mix_excluded(con: duckdb.DuckDBPyConnection, mix_id: str | None) -> list[dict[str, Any]]:
    """Why pool traces stayed out of the mix, and quota left unfilled, from its run's counts
    (`excluded:<bucket>:<reason>` and `unfilled:<bucket>` keys)."""
    row = _mix_run(con, mix_id)
    out = []
    for key, n in sorted(json.loads(row[1] or "{}").items() if row else []):
        parts = key.split(":")
        if parts[0] == "excluded" and len(parts) == 3:
            out.append({"bucket": parts[1], "reason": parts[2], "n": n})
        elif parts[0] == "unfilled" and len(parts) == 2 and n:
            out.append({"bucket": parts[1], "reason": "quota left unfilled", "n": n})
    return out


def _score_sample(con: duckdb.DuckDBPyConnection, n: int) -> list[dict[str, Any]]:
    """Traces of the sample as `{d, l, f: {filter: [passed, reason, {score: number}]}}`."""
    traces: dict[str, dict[str, Any]] = {}
    for r in _rows(con, "score_sample", {"n": n}):
        t = traces.setdefault(r["trace_id"], {"d": r["domain"], "l": r["language"], "f": {}})
        t["f"][r["filter"]] = [bool(r["passed"]), r["reason"], _numeric_scores(r["scores"])]
    return list(traces.values())


def _numeric_scores(blob: str | None) -> dict[str, float]:
    """Top-level numeric scores (bools become 0/1); nested details stay out of the page."""
    try:
        data = json.loads(blob) if blob else {}
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    out = {}
    for k, v in data.items():
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, (int, float)) and math.isfinite(v):
            out[k] = round(float(v), 6)
    return out


def _filter_config(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    rows = _rows(con, "filter_config")
    return json.loads(rows[0]["config"]) if rows else {}


def _sliders(sample: list[dict[str, Any]], given: list[SliderSpec], config: dict[str, Any]) -> list[SliderSpec]:
    """The configured sliders whose score occurs in the sample, then one per varying score of
    filters that have no configured slider.

    Those auto-added sliders start where they remove nothing and decide no stored reason, so
    moving one can only tighten; the configured ones know which reasons their threshold decides.
    """
    values: dict[tuple[str, str], set[float]] = {}
    for t in sample:
        for fname, (_p, _r, scores) in t["f"].items():
            for k, v in scores.items():
                values.setdefault((fname, k), set()).add(v)
    out = []
    for s in given:
        if (s.filter, s.score) in values:
            if s.value is None:
                s.value = _configured_threshold(config, s)
            out.append(s)
    covered = {s.filter for s in out}
    for (fname, k), vals in sorted(values.items()):
        if fname in covered or len(vals) < 3 or len(out) >= 16:
            continue
        out.append(SliderSpec(fname, k, ">=", min(vals), []))
    return out


def _configured_threshold(config: dict[str, Any], s: SliderSpec) -> float | None:
    """`filter.<filter>.<param>` of the newest filter run's recorded config."""
    section = config.get("filter", config)
    value = (section.get(s.filter) or {}).get(s.param) if isinstance(section, dict) and s.param else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
