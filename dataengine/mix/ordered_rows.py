"""The rows of a mix in mix order, in bounded memory at any mix size (what the export streams).

Sorting the joined rows in DuckDB (`sql/mix/export_rows.sql`) makes the sort carry every 20 KB
reasoning text: at 160k R1-length rows DuckDB runs out of memory ("failed to pin block"). Here
only the keys are sorted (`export_keys.sql`: ids, counts, verdicts; ~100 bytes a row), and the
texts are read by two plain scans in storage order (`export_trace_text.sql`,
`export_prompt_text.sql`) and distributed by output position into partitions of at most
`part_bytes` of text each: consecutive ranges of the mix order, kept in memory when one range
holds everything and spilled to LZ4 Arrow files otherwise. Each partition is then sorted on its
own, so memory is bounded by one partition whatever the size of the mix, and the text is read
from the store once.

>>> for batch in ordered_rows(con, mix_id, batch_rows=2000, part_bytes=512 << 20, tmp_dir=tmp):  # doctest: +SKIP
...     ...   # same columns and order as export_rows.sql
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dataengine import sqlfiles

# Column order of sql/mix/export_rows.sql (what `build_batch` reads).
ROW_COLUMNS = ("position", "copies", "bucket", "domain", "reason", "trace_id", "prompt_id", "source", "prompt",
               "reasoning", "answer", "prompt_tokens", "completion_tokens", "system", "history", "verdicts")
_TRACE_TEXT = ("reasoning", "answer", "system", "history")
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def memory_bytes(text: str) -> int:
    """A DuckDB-style memory size ("2GB", "512 MiB") in bytes.

    >>> memory_bytes("2GB"), memory_bytes("512 MiB")
    (2000000000, 536870912)
    """
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a memory size: {text!r} (e.g. 2GB, 512MiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _text_bytes(table: pa.Table, columns: tuple[str, ...], rows: np.ndarray) -> int:
    """Bytes of text in `columns` of the given rows of `table`."""
    return sum(int(pc.fill_null(pc.binary_length(table.column(c)), 0).to_numpy()[rows].sum()) for c in columns)


class _Partitions:
    """Text rows bucketed by output range [p * rows_per_part, (p + 1) * rows_per_part)."""

    def __init__(self, kind: str, n_rows: int, rows_per_part: int, tmp_dir: Path):
        self.kind, self.n_rows, self.rows_per_part = kind, n_rows, rows_per_part
        self.count = -(-n_rows // rows_per_part)
        self.tmp_dir = tmp_dir
        self._mem: dict[int, list[pa.Table]] = {}
        self._files: dict[int, tuple[Any, pa.ipc.RecordBatchStreamWriter]] = {}
        self._files_done: dict[int, None] = {}

    def _path(self, p: int) -> Path:
        return self.tmp_dir / f"{self.kind}-{p:05d}.arrow"

    def add(self, out_idx: np.ndarray, table: pa.Table, src: np.ndarray) -> None:
        """`table` row `src[i]` belongs at output position `out_idx[i]` (one copy per text)."""
        if not len(out_idx):
            return
        if self.count == 1:
            # In memory: keep the scanned batch and gather once in `take` (a copy per text saved).
            # A batch of which the mix uses few rows keeps only those, so memory follows the mix.
            if 2 * len(src) < table.num_rows:
                used, src = np.unique(src, return_inverse=True)
                table = table.take(pa.array(used))
            self._mem.setdefault(0, []).append((table, src, out_idx))
            return
        part = out_idx // self.rows_per_part
        order = np.argsort(part, kind="stable")
        part_sorted = part[order]
        bounds = np.flatnonzero(np.diff(part_sorted)) + 1
        for chunk in np.split(order, bounds):
            p = int(part[chunk[0]])
            piece = table.take(pa.array(src[chunk])).append_column("out_idx", pa.array(out_idx[chunk], pa.int64()))
            if p not in self._files:
                self.tmp_dir.mkdir(parents=True, exist_ok=True)
                sink = pa.OSFile(str(self._path(p)), "wb")
                opts = pa.ipc.IpcWriteOptions(compression="lz4")
                self._files[p] = (sink, pa.ipc.new_stream(sink, piece.schema, options=opts))
            self._files[p][1].write_table(piece)

    def close_writers(self) -> None:
        for sink, writer in self._files.values():
            writer.close()
            sink.close()
        self._files_done.update(dict.fromkeys(self._files))
        self._files = {}

    def take(self, p: int, schema: pa.Schema) -> _Sorted:
        """Partition `p` in output order (every position in its range exactly once), gathered
        lazily one output batch at a time."""
        if self.count == 1:
            raw = self._mem.pop(p, [])
            chunks = [t for t, _, _ in raw]
            chunk_of = np.concatenate([np.full(len(s), i) for i, (_, s, _) in enumerate(raw)]) if raw else np.zeros(0, np.int64)
            row_of = np.concatenate([s for _, s, _ in raw]) if raw else np.zeros(0, np.int64)
            idx = np.concatenate([o for _, _, o in raw]) if raw else np.zeros(0, np.int64)
        else:
            if p in self._files_done:
                path = self._path(p)
                with pa.OSFile(str(path), "rb") as f:
                    chunks = [pa.Table.from_batches([b]) for b in pa.ipc.open_stream(f)]
                path.unlink()
            else:
                chunks = []
            chunk_of = np.concatenate([np.full(t.num_rows, i) for i, t in enumerate(chunks)]) if chunks else np.zeros(0, np.int64)
            row_of = np.concatenate([np.arange(t.num_rows) for t in chunks]) if chunks else np.zeros(0, np.int64)
            idx = np.concatenate([t.column("out_idx").to_numpy() for t in chunks]) if chunks else np.zeros(0, np.int64)
        order = np.argsort(idx, kind="stable")
        lo, hi = p * self.rows_per_part, min(self.n_rows, (p + 1) * self.rows_per_part)
        if not np.array_equal(idx[order], np.arange(lo, hi)):
            seen = np.bincount(idx - lo, minlength=hi - lo)
            what = "missing" if (seen == 0).any() else "stored twice"
            bad = int(np.flatnonzero(seen != 1)[0]) + lo
            raise RuntimeError(f"export: the {self.kind} text of mix row {bad} is {what} "
                               "(the store changed during the export, or a table holds an id twice)")
        return _Sorted(chunks, chunk_of[order], row_of[order], [f.name for f in schema if f.name != "out_idx"])


class _Sorted:
    """Rows of several tables in a given order, gathered a slice at a time.

    Memory allocations stay the size of one output batch: one big concatenation or gather of a
    500 MB partition is fresh memory each time, and first-touching it cost more than the copy
    itself (3x on the 2-core machine).
    """

    def __init__(self, chunks: list[pa.Table], chunk_of: np.ndarray, row_of: np.ndarray, columns: list[str]):
        self.chunks, self.chunk_of, self.row_of, self.columns = chunks, chunk_of, row_of, columns

    def __len__(self) -> int:
        return len(self.chunk_of)

    def slice(self, a: int, b: int) -> pa.Table:
        chunk_of, row_of = self.chunk_of[a:b], self.row_of[a:b]
        by_chunk = np.argsort(chunk_of, kind="stable")
        cs = chunk_of[by_chunk]
        bounds = np.flatnonzero(np.diff(cs)) + 1
        pieces = [self.chunks[int(chunk_of[g[0]])].select(self.columns).take(pa.array(row_of[g]))
                  for g in np.split(by_chunk, bounds) if len(g)]
        if not pieces:
            return pa.table({c: pa.array([], pa.string()) for c in self.columns})
        grouped = pa.concat_tables(pieces).combine_chunks()
        back = np.empty_like(by_chunk)
        back[by_chunk] = np.arange(len(by_chunk))
        return grouped.take(pa.array(back))


def _scatter(keys: pd.Index, starts: np.ndarray, order: np.ndarray, ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(row in the batch, output position) for every use of each batch id among the mix's ids.

    `keys` are the mix's distinct ids; the output positions using key k are
    `order[starts[k]:starts[k + 1]]` (a prompt is shared by its traces).
    """
    code = keys.get_indexer(ids.to_numpy(zero_copy_only=False))
    rows = np.flatnonzero(code >= 0)
    code = code[rows]
    counts = starts[code + 1] - starts[code]
    src = np.repeat(rows, counts)
    first = np.repeat(starts[code], counts)
    within = np.arange(len(src)) - np.repeat(np.cumsum(counts) - counts, counts)
    return src, order[first + within]


def _grouping(ids: pa.Array) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(ids.to_numpy(zero_copy_only=False))
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return pd.Index(uniques), starts, order


def ordered_rows(con: Any, mix_id: str, batch_rows: int, part_bytes: int, tmp_dir: Path) -> Iterator[pa.RecordBatch]:
    """The rows of `export_rows.sql` for `mix_id`, same columns, same order, in batches."""
    keys = con.sql(sqlfiles.load("mix/export_keys"), params={"mix_id": mix_id}).arrow()
    if hasattr(keys, "read_all"):  # a RecordBatchReader in some DuckDB versions
        keys = keys.read_all()
    n = keys.num_rows
    if n == 0:
        return
    trace_keys, trace_starts, trace_order = _grouping(keys.column("trace_id").combine_chunks())
    prompt_keys, prompt_starts, prompt_order = _grouping(keys.column("prompt_id").combine_chunks())
    tmp_dir = Path(tmp_dir)
    traces: _Partitions | None = None
    prompts: _Partitions | None = None
    try:
        reader = con.sql(sqlfiles.load("mix/export_trace_text")).to_arrow_reader(batch_rows)
        trace_schema = None
        for batch in reader:
            src, out = _scatter(trace_keys, trace_starts, trace_order, batch.column("trace_id"))
            rows = pa.Table.from_batches([batch]).select(list(_TRACE_TEXT))
            if traces is None:
                if not len(src):
                    continue
                # Partition size from the first texts seen (x2: later rows may run longer, and the
                # prompts add to each partition).
                per_row = 2 * _text_bytes(rows, _TRACE_TEXT, src) / len(src) + 1
                rpp = max(1, min(n, int(part_bytes / per_row)))
                traces = _Partitions("trace", n, rpp, tmp_dir)
                prompts = _Partitions("prompt", n, rpp, tmp_dir)
            trace_schema = rows.schema.append(pa.field("out_idx", pa.int64()))
            traces.add(out, rows, src)
        if traces is None or prompts is None:
            raise RuntimeError(f"export: none of the {n} traces of mix {mix_id!r} has its text in the store")
        traces.close_writers()
        reader = con.sql(sqlfiles.load("mix/export_prompt_text")).to_arrow_reader(batch_rows)
        prompt_schema = None
        for batch in reader:
            src, out = _scatter(prompt_keys, prompt_starts, prompt_order, batch.column("prompt_id"))
            rows = pa.Table.from_batches([batch]).select(["prompt"])
            prompt_schema = rows.schema.append(pa.field("out_idx", pa.int64()))
            prompts.add(out, rows, src)
        prompts.close_writers()
        for p in range(traces.count):
            t = traces.take(p, trace_schema)
            q = prompts.take(p, prompt_schema or pa.schema([("prompt", pa.string()), ("out_idx", pa.int64())]))
            lo = p * traces.rows_per_part
            for a in range(0, len(t), batch_rows):
                b = min(len(t), a + batch_rows)
                k = keys.slice(lo + a, b - a)
                tt, qq = t.slice(a, b), q.slice(a, b)
                cols = {c: k.column(c) for c in k.column_names}
                cols.update({c: tt.column(c) for c in _TRACE_TEXT})
                cols["prompt"] = qq.column("prompt")
                yield from pa.table({c: cols[c] for c in ROW_COLUMNS}).to_batches()
            del t, q
    finally:
        for parts in (traces, prompts):
            if parts is not None:
                parts.close_writers()
        shutil.rmtree(tmp_dir, ignore_errors=True)
