"""Prefect artifacts a pipeline leaves on its flow run: funnel, verdicts, mix against quota, links.

Figures come from the report's SQL (`dataengine.report.data.collect(summary_only=True)`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.artifacts import create_link_artifact, create_table_artifact

from dataengine.report.data import collect
from dataengine.store import Workspace


def _key(text: str) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower()).strip("-")


def workspace_key(ws: Workspace, name: str) -> str:
    """`<workspace folder>-<hash of its path>-<name>`: an artifact key is global on a Prefect server,
    so runs on different workspaces keep their own history instead of overwriting each other's."""
    import hashlib

    root = str(Path(ws.root).resolve())
    return _key(f"{Path(root).name[:24]}-{hashlib.sha256(root.encode()).hexdigest()[:8]}-{name}")


def publish_stage(ws: Workspace, stage: str) -> None:
    """The artifact that belongs after `stage`, if it has one."""
    data = collect(ws, summary_only=True)
    if stage == "filter":
        rows = [{"step": f["step"], "traces": f["n"], "stage ran": f["ran"]} for f in data["funnel"]]
        create_table_artifact(rows, key=workspace_key(ws, "filter-funnel"), description="Filter funnel: traces kept at each step")
        if data["filter_pass"]:
            create_table_artifact(data["filter_pass"], key=workspace_key(ws, "filter-pass-rates"), description="Pass rate per filter")
    elif stage == "verify" and data["verdicts"]:
        create_table_artifact(data["verdicts"], key=workspace_key(ws, "verdicts"), description="Verdicts per verifier, domain and verdict")
    elif stage == "mix" and data["mix"]:
        buckets: dict[str, int] = {}
        for r in data["mix"]:
            buckets[r["bucket"]] = buckets.get(r["bucket"], 0) + r["n"]
        quota = data["mix_quota"]
        rows = [{"bucket": b, "chosen": buckets.get(b, 0), "quota": quota.get(b)} for b in sorted(set(buckets) | set(quota))]
        create_table_artifact(rows, key=workspace_key(ws, "mix-vs-quota"), description="Mix: rows chosen per bucket against the quota")
        create_table_artifact(data["mix"], key=workspace_key(ws, "mix-per-domain"), description="Mix rows per bucket and domain")


def publish_final(ws: Workspace, pipeline: str, report: str | None, dataset: str | None) -> None:
    data = collect(ws, summary_only=True)
    rows = [{"step": f["step"], "traces": f["n"], "stage ran": f["ran"]} for f in data["funnel"]]
    create_table_artifact(rows, key=workspace_key(ws, f"{pipeline}-funnel"), description=f"{pipeline}: the whole funnel")
    if report:
        create_link_artifact(Path(report).resolve().as_uri(), link_text="HTML report", key=workspace_key(ws, f"{pipeline}-report"),
                             description=f"Report of {ws.root}")
    if dataset:
        create_link_artifact(Path(dataset).resolve().as_uri(), link_text="exported dataset",
                             key=workspace_key(ws, f"{pipeline}-dataset"), description="datasets.load_from_disk() this folder")


def find_dataset(result: dict[str, Any]) -> str | None:
    """The export folder named in the export stage's result, whatever the key."""
    for key in ("out", "out_dir", "path", "dataset", "dataset_dir", "save_to_disk"):
        v = result.get(key)
        if isinstance(v, str) and v:
            return v
    return None
