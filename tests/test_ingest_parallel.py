"""The parallel JSONL path (worker processes, Arrow blocks) stores exactly what the in-process
path stores: the same traces, prompts and quarantine rows, the same counts, on a real trace file
with bad lines in it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import dataengine.ingest as ingest_mod
from dataengine.ingest import IngestConfig, IngestOptions, ingest
from dataengine.store import Workspace

QWQ = "thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"
QWQ_MAP = {"prompt": "question", "completion": "response", "reference_answer": "gold_answer",
           "model": "thinking_model"}
# What the broken lines below must be quarantined as (the cut lines: invalid_json).
BAD_REASONS = {"not_an_object", "invalid_utf8", "empty_prompt", "wrong_type", "non_finite_number", "invalid_json"}


def _with_bad_lines(src: Path, dst: Path) -> int:
    """`src` with every 97th line cut in half, a few malformed rows, a repeated row (its sample 1),
    a blank line and CRLF endings on the first lines; returns the number of non-blank lines."""
    lines = [x for x in src.read_bytes().split(b"\n") if x]
    for i in range(50, len(lines), 97):
        lines[i] = lines[i][: len(lines[i]) // 2]
    lines[10:10] = [b"[1, 2]", b'{"question": "   ", "response": "x"}', b'{"question": "q\xff", "response": "x"}',
                    b'{"question": "q", "response": 5}', b'{"question": "q3", "response": "a", "x": NaN}']
    lines.insert(60, lines[70])
    n = len(lines)
    lines.insert(20, b"")
    dst.write_bytes(b"\r\n".join(lines[:300]) + b"\n" + b"\n".join(lines[300:]) + b"\n")
    return n


def _tables(ws: Workspace) -> dict[str, list[tuple]]:
    """Every stored column of each table (span columns included) but run_id and written_at, sorted."""
    out = {}
    con = duckdb.connect()
    for table in ("traces", "prompts", "quarantine"):
        shards = [str(p) for p in ws.shards(table)]
        assert shards, table
        out[table] = con.execute(
            f"select * exclude (run_id, written_at) from read_parquet({shards!r}, union_by_name=true) order by all"
        ).fetchall()
    return out


@pytest.mark.parametrize("think_format", ["prompt_opened", "auto"])
def test_parallel_path_stores_what_the_in_process_path_stores(tmp_path, shared_data, monkeypatch, think_format):
    src = tmp_path / "qwq_bad.jsonl"
    n_lines = _with_bad_lines(shared_data / "traces" / QWQ, src)
    opts = IngestOptions(mapping=QWQ_MAP, domain="math", think_format=think_format)

    ws1 = Workspace.init(tmp_path / "in_process")
    one = ingest(ws1, src, opts, IngestConfig(workers=1))

    calls = []
    real = ingest_mod._parallel_jsonl

    def spy(*args, **kwargs):  # the real function: only records that the workers ran
        calls.append(args[0])
        yield from real(*args, **kwargs)

    monkeypatch.setattr(ingest_mod, "_parallel_jsonl", spy)
    ws2 = Workspace.init(tmp_path / "parallel")
    # Small blocks: many blocks per worker, a prompt's samples spread over several of them.
    cfg2 = IngestConfig(workers=2, parallel_min_bytes=0, block_bytes=64 << 10, shard_rows=700)
    two = ingest(ws2, src, opts, cfg2)
    assert calls == [src]

    for rep in (one, two):
        assert rep.reconciles and rep.rows_in == n_lines
        assert rep.quarantined >= 25 and set(rep.reasons) == BAD_REASONS, rep.reasons
    fields = ("rows_in", "taken", "already_stored", "quarantined", "traces_written", "prompts_written",
              "reasons", "think_format")
    assert {f: getattr(one, f) for f in fields} == {f: getattr(two, f) for f in fields}
    t1, t2 = _tables(ws1), _tables(ws2)
    assert len(t1["traces"]) == one.traces_written and len(t1["quarantine"]) == one.quarantined
    for table in t1:
        assert t1[table] == t2[table], table
    # The repeated row is sample 1 of its prompt, in file order, on both paths.
    assert ws2.query("select max(sample_idx) from traces").fetchone()[0] >= 1

    # Re-ingest on the parallel path: every row is already stored (or quarantined again).
    again = ingest(ws2, src, opts, cfg2)
    assert again.reconciles and again.traces_written == 0 and again.prompts_written == 0
    assert again.already_stored == one.taken and again.quarantined == one.quarantined
    assert len(_tables(ws2)["traces"]) == one.traces_written


def test_block_ranges_decode_to_the_rows_of_block_bytes(tmp_path, shared_data):
    """Workers read a plain file's blocks by (offset, size): the same rows, line numbers and
    quarantine reasons as the blocks' bytes, around oversized, blank, CRLF and unterminated lines."""
    from dataengine.readers import ByteRange, decode_jsonl_block, jsonl_blocks

    src = tmp_path / "qwq_bad.jsonl"
    _with_bad_lines(shared_data / "traces" / QWQ, src)
    data = src.read_bytes()
    big = b'{"question": "big", "response": "' + b"x" * 300_000 + b'"}'
    src.write_bytes(data[:100_000] + b"\n" + big + b"\n\n" + data[100_000:] + big)  # no newline at the end

    def rows(blocks):
        out = []
        for item in blocks:
            if isinstance(item[0], (bytes, ByteRange)):
                raw = item[0].read() if isinstance(item[0], ByteRange) else item[0]
                out += [(n, r if isinstance(r, dict) else r.reason) for n, r in decode_jsonl_block(raw, item[1], 200_000)]
            else:
                out.append((item[0], item[1].reason))
        return out

    for block_bytes in (1, 64 << 10, 4 << 20):
        by_bytes = rows(jsonl_blocks(src, block_bytes, 200_000))
        by_range = list(jsonl_blocks(src, block_bytes, 200_000, ranges=True))
        assert any(isinstance(item[0], ByteRange) for item in by_range)
        assert rows(by_range) == by_bytes
        assert sum(1 for _n, r in by_bytes if r == "row_too_large") == 2
        assert len(by_bytes) > 2000


def test_auto_workers_leave_two_cores_to_one_process():
    from dataengine.ingest import auto_workers

    # 2 workers beside the parent on 2 cores were slower than one process (bench_ingest.py):
    # workers start only where each gets a core beside the parent's.
    assert [auto_workers(c) for c in (1, 2, 3, 4, 16)] == [1, 1, 1, 3, 15]
