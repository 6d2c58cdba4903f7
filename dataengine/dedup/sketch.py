"""Hash texts into what dedup keeps in memory: an exact hash and a MinHash signature per text.

Text is streamed from Parquet shards in batches of about `batch_bytes`; only ids, lengths, hashes
and signatures (num_perm x 4 bytes per text) survive a batch, so memory stays bounded however
long and many the traces are. `sketch_parquet` is the unit of work one process does on one shard.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataengine.dedup.minhash import shingle_sets, shingles, signatures, sorted_unique
from dataengine.dedup.normalize import TokenBatch, exact_hashes, tokenize, tokenize_arrow
from dataengine.schema import TABLES
from dataengine.store import read_shard_columns


@dataclass
class SketchParams:
    ngram: int = 5
    num_perm: int = 128
    method: str = "oph"
    seed: int = 0
    batch_bytes: int = 250_000


@dataclass
class Sketches:
    """Per text: ids, character length, normalised exact hash, signature, token count."""

    ids: list[str]
    groups: list[str]
    n_chars: np.ndarray  # int64
    exact: list[str]
    sig: np.ndarray  # uint32 [n, num_perm]
    n_tokens: np.ndarray  # int64

    @staticmethod
    def concat(parts: list[Sketches], num_perm: int) -> Sketches:
        if not parts:
            z = np.zeros(0, dtype=np.int64)
            return Sketches([], [], z, [], np.zeros((0, num_perm), dtype=np.uint32), z)
        return Sketches(
            [x for p in parts for x in p.ids],
            [x for p in parts for x in p.groups],
            np.concatenate([p.n_chars for p in parts]),
            [x for p in parts for x in p.exact],
            np.concatenate([p.sig for p in parts]),
            np.concatenate([p.n_tokens for p in parts]),
        )


def sketch_texts(ids: list[str], groups: list[str], texts: list[str], p: SketchParams) -> Sketches:
    """Sketch one batch of texts."""
    n_chars = np.fromiter((len(t) if t else 0 for t in texts), dtype=np.int64, count=len(texts))
    return _sketch(ids, groups, tokenize(texts), n_chars, p)


def sketch_arrow(ids: list[str], groups: list[str], texts: pa.Array | pa.ChunkedArray, p: SketchParams) -> Sketches:
    """`sketch_texts` of an Arrow string column: the text stays UTF-8 bytes (no Python string
    per text, which cost as much as the hashing); null is the empty text."""
    n_chars = pc.fill_null(pc.utf8_length(texts), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return _sketch(ids, groups, tokenize_arrow(texts), n_chars, p)


def _sketch(ids: list[str], groups: list[str], tb: TokenBatch, n_chars: np.ndarray, p: SketchParams) -> Sketches:
    doc, sh = shingles(tb, p.ngram)
    sig = signatures(doc, sh, tb.n_docs, p.num_perm, p.method, p.seed)
    return Sketches(ids, groups, n_chars, exact_hashes(tb), sig, np.diff(tb.offsets))


def _rows_per_read(pf: pq.ParquetFile, text_col: str, read_bytes: int) -> int:
    """Rows holding about `read_bytes` of text, from the column sizes in the file's metadata."""
    md = pf.metadata
    # a spanned text (`reasoning`) is NULL in new shards: its size is its source's (the completion)
    col = pf.schema_arrow.get_field_index(dict(TABLES["traces"].text_spans).get(text_col, text_col))
    total = sum(md.row_group(i).column(col).total_uncompressed_size for i in range(md.num_row_groups))
    per_row = max(1, total // max(1, md.num_rows))
    return int(max(16, min(100_000, read_bytes // per_row)))


def byte_slices(rb: pa.RecordBatch, text_col: str, batch_bytes: int) -> Iterator[pa.RecordBatch]:
    """Consecutive zero-copy slices of `rb` holding about `batch_bytes` of text each."""
    lengths = pc.fill_null(pc.binary_length(rb.column(text_col)), 0).to_numpy(zero_copy_only=False)
    ends = np.cumsum(lengths)
    start = 0
    while start < rb.num_rows:
        base = ends[start - 1] if start else 0
        stop = int(np.searchsorted(ends, base + batch_bytes, side="left")) + 1
        stop = min(max(stop, start + 1), rb.num_rows)
        yield rb.slice(start, stop - start)
        start = stop


def _shard_batches(pf: pq.ParquetFile, path: str, columns: list[str], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of a `traces` shard: straight from Parquet, or through `read_shard_columns` when a
    column is stored as a span of the completion (`reasoning`, issue 15: text stored once)."""
    if {t for t, _ in TABLES["traces"].text_spans} & set(columns):
        return read_shard_columns(path, "traces", columns, batch_size=rows)
    return pf.iter_batches(batch_size=rows, columns=columns)


def sketch_parquet(path: str, id_col: str, group_col: str, text_col: str, p: SketchParams) -> Sketches:
    """Sketch every row of one Parquet shard (run in a worker process).

    Reads a few batches' worth of rows at a time (small reads cost twice the decoding) and
    hashes them in zero-copy slices of about `batch_bytes` of text, so memory stays bounded.
    """
    pf = pq.ParquetFile(path)
    parts = []
    rows = _rows_per_read(pf, text_col, max(8_000_000, p.batch_bytes))
    for rb in _shard_batches(pf, path, [id_col, group_col, text_col], rows):
        for sl in byte_slices(rb, text_col, p.batch_bytes):
            parts.append(sketch_arrow(sl.column(id_col).to_pylist(), sl.column(group_col).to_pylist(), sl.column(text_col), p))
    return Sketches.concat(parts, p.num_perm)


def exact_sets_parquet(path: str, id_col: str, text_col: str, wanted: set[str], ngram: int) -> dict[str, np.ndarray]:
    """Sorted unique shingle hashes (truncated to 32 bits) of the rows of `path` whose id is wanted."""
    pf = pq.ParquetFile(path)
    out: dict[str, np.ndarray] = {}
    for rb in _shard_batches(pf, path, [id_col, text_col], 1024):
        ids = rb.column(0).to_pylist()
        keep = [i for i, x in enumerate(ids) if x in wanted]
        if not keep:
            continue
        tb = tokenize_arrow(rb.column(1).take(pa.array(keep, pa.int64())))
        # 32-bit shingle ids halve the memory; a collision (2**-32 per pair) barely moves Jaccard.
        for i, s in zip(keep, shingle_sets(tb, ngram), strict=True):
            out[ids[i]] = sorted_unique(s.astype(np.uint32))
    return out
