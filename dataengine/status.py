"""`dataengine status`: what a workspace holds and which stages are out of date.

A stage is stale when a stage that writes one of the tables it reads (`pipeline.STAGES[...].reads`)
finished after it last did: its outputs were computed from older inputs.
"""

from __future__ import annotations

from typing import Any

from dataengine.store import Workspace

# Which runs write each table the stages read (runs.stage names).
WRITERS: dict[str, tuple[str, ...]] = {
    "prompts": ("prompts", "ingest", "ingest_sft", "demo_prompts"),
    "traces": ("prompts", "ingest", "ingest_sft", "generate", "augment_cot"),
    "filter_results": ("filter",),
    "verifications": ("verify",),
    "selections": ("select",),
    "dedup": ("dedup",),
    "dedup_prompts": ("dedup",),
    "contamination_hits": ("decontaminate",),
    "mix_members": ("mix",),
}


def workspace_status(ws: Workspace) -> dict[str, Any]:
    """Row counts per table, the latest run of each stage, runs still open, and stale stages."""
    from dataengine.pipeline import STAGES
    from dataengine.schema import TABLES

    tables = {}
    for name in sorted(TABLES):
        try:
            tables[name] = ws.query(f"select count(*) from {name}").fetchone()[0]
        except Exception as e:  # a table this build does not have yet: say so, do not hide it
            tables[name] = f"unreadable: {type(e).__name__}"
    rows = ws.query(
        "select stage, status, count(*) over (partition by stage) as runs, ended_at, count_in, count_out, "
        "count_quarantined, run_id from runs "
        "qualify row_number() over (partition by stage order by coalesce(ended_at, started_at) desc) = 1 "
        "order by coalesce(ended_at, started_at)").fetchall()
    stages = [{"stage": r[0], "status": r[1], "runs": r[2], "ended_at": str(r[3]) if r[3] else None,
               "in": r[4], "out": r[5], "quarantined": r[6], "run_id": r[7]} for r in rows]
    ok_end = dict(ws.query("select stage, max(ended_at) from runs where status = 'ok' group by stage").fetchall())
    stale = {}
    for stage, spec in STAGES.items():
        mine = ok_end.get(stage)
        if mine is None:
            continue
        newer = sorted({w for t in spec.reads for w in WRITERS.get(t, ()) if w != stage
                        and ok_end.get(w) is not None and ok_end[w] > mine})
        if newer:
            stale[stage] = newer
    running = [r[0] for r in ws.query("select run_id from runs where status = 'running' order by started_at").fetchall()]
    return {"workspace": str(ws.root), "tables": tables, "stages": stages, "stale": stale, "running": running}
