"""Text stored once (issue 15): a trace's reasoning and answer are spans of its completion.

Shards keep `reasoning_start/_len` and `answer_start/_len` (code points) instead of the text; the
`traces` view derives the text with DuckDB's substr. These tests pin that Python's code-point
offsets and DuckDB's substr agree (non-BMP text, every real trace), that a text which is not a
substring is kept as it is, and that workspaces written before (full-text shards) still read.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dataengine.ingest import IngestOptions, ingest
from dataengine.mix.sft_ingest import ingest_sft
from dataengine.records import Trace, split_completion
from dataengine.schema import TABLES
from dataengine.store import Workspace, read_shard_columns, span_columns

SPANS = ["reasoning_start", "reasoning_len", "answer_start", "answer_len"]


def _stored(ws: Workspace):
    """Every stored shard row: the raw columns, read by pyarrow (Python code-point strings)."""
    return pa.concat_tables(
        [pq.read_table(p).select(["trace_id", "completion", "reasoning", "answer", *SPANS]) for p in ws.shards("traces")]
    ).to_pylist()


def _view(ws: Workspace) -> dict[str, tuple[str | None, str | None]]:
    con = ws.connect()
    try:
        return {r[0]: (r[1], r[2]) for r in con.execute("select trace_id, reasoning, answer from traces").fetchall()}
    finally:
        con.close()


def _python_text(row: dict, text: str) -> str | None:
    s = row[f"{text}_start"]
    return row[text] if s is None else row["completion"][s : s + row[f"{text}_len"]]


NON_BMP = [
    # emoji (astral, ZWJ sequences, skin tones), CJK, astral math letters, combining marks, RTL
    "<think>Let 𝑥 = 𝔸 ∩ 𝔹 😀👨‍👩‍👧 so 中文推理 é\u0301 مرحبا</think>\n\n答案是 𝟒𝟐 🎉",
    "<think>\n\U0001f600" * 3 + "</think>𝟘",
    "前言<think>思考 𝛼𝛽𝛾</think>  𝐀𝐧𝐬𝐰𝐞𝐫: ∑ 😀 ",
    "no think block at all: 𝔽 😀 全部是答案",
    "<think>cut off inside the reasoning 𝕏 🙃",
]


def test_non_bmp_spans_read_back_exactly(ws):
    rows = []
    for i, c in enumerate(NON_BMP):
        t = Trace(prompt_id=f"p{i}", completion=c, model="m")
        rows.append(t.to_row())
    ws.write_shard("traces", rows)
    stored = _stored(ws)
    # stored once: every text is a span, none is stored again
    assert all(r["reasoning"] is None and r["answer"] is None for r in stored)
    view = _view(ws)
    for r, c in zip(sorted(stored, key=lambda r: r["trace_id"]), sorted(rows, key=lambda r: r["trace_id"])):
        s = split_completion(c["completion"])
        assert (_python_text(r, "reasoning"), _python_text(r, "answer")) == (s.reasoning, s.answer)
        assert view[r["trace_id"]] == (s.reasoning, s.answer), c["completion"]


def test_text_that_is_not_a_substring_is_kept(ws):
    # A writer that passes its own reasoning (a typed message part, re-joined text): kept whole.
    rows = [
        Trace(prompt_id="a", completion="<think>x</think>y", reasoning="not in the completion 😀", answer="y").to_row(),
        Trace(prompt_id="b", completion="<think>x</think>y", reasoning="x", answer="an answer elsewhere").to_row(),
        {**Trace(prompt_id="c", completion="abc").to_row(), "reasoning": None, "answer": None},
    ]
    ws.write_shard("traces", rows)
    stored = {r["trace_id"]: r for r in _stored(ws)}
    view = _view(ws)
    for row in rows:
        assert view[row["trace_id"]] == (row["reasoning"], row["answer"])
    a = stored[rows[0]["trace_id"]]
    assert a["reasoning"] == "not in the completion 😀" and a["reasoning_start"] is None and a["answer"] is None
    c = stored[rows[2]["trace_id"]]
    assert c["reasoning"] is None and c["reasoning_start"] is None  # NULL stays NULL


def test_every_real_trace_reads_back_the_same_in_python_and_duckdb(ws, shared_data):
    """All of ../shared/data/traces (as tests/test_ingest.py maps them) and every SFT set: the view's
    text equals the completion sliced by Python at the stored code-point offsets, and equals the
    one split of the completion; no row of the real data needs its text kept."""
    from tests.test_ingest import TRACE_FILES

    for rel, (opts, _n) in sorted(TRACE_FILES.items()):
        ingest(ws, shared_data / "traces" / rel, IngestOptions(kind="traces", **opts))
    for f in sorted((shared_data / "sft").iterdir()):
        ingest_sft(ws, f)
    stored = _stored(ws)
    assert len(stored) > 9_000
    view = _view(ws)
    assert len(view) == len(stored)
    con = ws.connect()
    fmt = dict(con.execute("select trace_id, think_format from traces").fetchall())
    con.close()
    kept = 0
    non_ascii = 0
    for r in stored:
        py = (_python_text(r, "reasoning"), _python_text(r, "answer"))
        assert view[r["trace_id"]] == py, r["trace_id"]
        s = split_completion(r["completion"], fmt[r["trace_id"]])
        assert py == (s.reasoning, s.answer), r["trace_id"]
        kept += r["reasoning"] is not None or r["answer"] is not None
        non_ascii += not r["completion"].isascii()
    assert kept == 0
    assert non_ascii > 100  # the check covers multi-byte text (CJK SFT sets, math symbols)


def _old_schema() -> pa.Schema:
    """The traces schema before issue 15: reasoning and answer in full, no span columns."""
    spec = TABLES["traces"]
    return pa.schema([f for f in spec.schema if f.name not in span_columns(spec)])


def test_old_workspace_with_full_text_shards_still_reads(tmp_path, shared_data):
    root = tmp_path / "old"
    ws = Workspace.init(root)
    # Write it the old way: full reasoning/answer, old marker, a catalog of the old version.
    old = _old_schema()
    tdir = ws.table_dir("traces")
    pq.write_table(old.empty_table(), tdir / "_schema.parquet", compression="zstd")
    src = shared_data / "traces" / "thinking_llms_interp" / "r1distill_qwq_benchmark_traces.jsonl"
    import json

    rows = []
    for i, line in enumerate(open(src, encoding="utf-8")):
        if i >= 40:
            break
        r = json.loads(line)
        rows.append(Trace(prompt_id=f"p{i}", completion=r["response"], model="old", think_format="prompt_opened").to_row())
    data = {n: [r.get(n) for r in rows] for n in old.names if n != "written_at"}
    data["written_at"] = [None] * len(rows)
    pq.write_table(pa.Table.from_pydict(data, schema=old), tdir / "0old.parquet", compression="zstd")
    con = duckdb.connect(str(root / "catalog.duckdb"))
    con.execute("update _catalog_meta set value = '2' where key = 'version'")
    con.close()

    ws = Workspace.open(root)  # refreshes the stale catalog and the marker
    expect = {r["trace_id"]: (r["reasoning"], r["answer"]) for r in rows}
    assert all(v[0] for v in expect.values())
    assert _view(ws) == expect
    # A new shard beside the old one: both read, the old one from its text, the new from spans.
    new = Trace(prompt_id="new", completion="<think>𝔸 😀</think>𝟒", model="new")
    ws.write_shard("traces", [new.to_row()])
    got = _view(ws)
    assert got[new.trace_id] == ("𝔸 😀", "𝟒")
    assert {k: got[k] for k in expect} == expect
    # SQL of sql/ reads t.reasoning through the view: the filter stage's candidates, on old rows.
    con = ws.connect()
    n = con.execute("select count(*) from traces t where t.reasoning is not null and length(t.answer) >= 0").fetchone()[0]
    hist = con.execute("select count(*) from traces_history where reasoning is not null").fetchone()[0]
    con.close()
    assert n == hist == len(rows) + 1
    # Direct Parquet readers (dedup) derive the text too, old shard and new.
    direct = {}
    for shard in ws.shards("traces"):
        for rb in read_shard_columns(shard, "traces", ["trace_id", "reasoning"]):
            direct.update(zip(rb.column(0).to_pylist(), rb.column(1).to_pylist()))
    assert direct == {k: v[0] for k, v in got.items()}


def test_span_of_finds_a_true_occurrence_or_keeps_the_text():
    """The probe-and-confirm search: any span it returns reads back the text; None only when absent."""
    import random

    from dataengine.store import span_of

    rng = random.Random(7)
    alphabet = "ab😀中 \n𝔸"
    for _ in range(20_000):
        src = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        i = rng.randint(0, len(src))
        j = rng.randint(i, len(src))
        text = src[i:j] if rng.random() < 0.9 else src[i:j] + "zz"
        for last in (False, True):
            kept, start, n = span_of(src, text, last)
            if kept is None:
                assert start is not None and start >= 0 and src[start : start + n] == text
            else:
                assert kept == text and text not in src
