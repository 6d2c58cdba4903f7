"""Dump the `traces` view (every column but run_id/written_at) after ingesting ALL the real data.

The before/after check of issue 15 (text stored once, ingest fast path): run it on two checkouts
and compare the dumps; the count of differing lines must be 0.

    PYTHONPATH=/work/main python bench/dump_traces.py /tmp/before.jsonl /tmp/ws-before [extra.jsonl]
    PYTHONPATH=$PWD       python bench/dump_traces.py /tmp/after.jsonl  /tmp/ws-after  [extra.jsonl]
    cmp /tmp/before.jsonl /tmp/after.jsonl

Ingests every file of ../shared/data/traces as tests/test_ingest.py maps it, the QwQ file again
with the think format detected (auto), every SFT set (`ingest_sft`, format auto), and optionally
a JSONL of canonical fields (bench_scale's R1-length simulated traces).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_ingest import TRACE_FILES  # noqa: E402

from dataengine.ingest import IngestOptions, ingest  # noqa: E402
from dataengine.mix.sft_ingest import ingest_sft  # noqa: E402
from dataengine.store import Workspace  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    out, wsdir = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(wsdir, ignore_errors=True)
    ws = Workspace.init(wsdir)
    for rel, (opts, _n) in sorted(TRACE_FILES.items()):
        ingest(ws, DATA / "traces" / rel, IngestOptions(kind="traces", **opts))
    qwq = "thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"
    ingest(ws, DATA / "traces" / qwq, IngestOptions(mapping={"prompt": "question", "completion": "response",
                                                             "model": "thinking_model"},
                                                    source="auto-" + qwq, sampling_run="auto"))
    for f in sorted((DATA / "sft").iterdir()):
        ingest_sft(ws, f)
    if len(sys.argv) > 3:
        ingest(ws, sys.argv[3], IngestOptions(domain="math"))
    con = ws.connect()
    cols = [r[0] for r in con.execute("describe traces").fetchall() if r[0] not in ("run_id", "written_at")]
    cur = con.execute(f"select {', '.join(cols)} from traces order by trace_id")  # noqa: S608 - our column names
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        while rows := cur.fetchmany(1000):
            for r in rows:
                f.write(json.dumps([x if isinstance(x, (str, int, float, bool, type(None))) else str(x) for x in r],
                                   ensure_ascii=False) + "\n")
                n += 1
    quarantined = con.execute("select count(*) from quarantine").fetchone()[0]
    print(f"{n} traces, {quarantined} quarantine rows; columns: {', '.join(cols)}")


if __name__ == "__main__":
    main()
