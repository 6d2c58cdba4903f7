"""Hash texts into what dedup keeps in memory: an exact hash and a MinHash signature per text.

Text is streamed from Parquet shards in batches of about `batch_bytes`; only ids, lengths, hashes
and signatures (num_perm x 4 bytes per text) survive a batch, so memory stays bounded however
long and many the traces are. `sketch_parquet` is the unit of work one process does on one shard.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dataengine.dedup.minhash import shingle_sets, shingles, signatures
from dataengine.dedup.normalize import exact_hashes, tokenize
from dataengine.store import read_shard_columns


@dataclass
class SketchParams:
    ngram: int = 5
    num_perm: int = 128
    method: str = "oph"
    seed: int = 0
    batch_bytes: int = 2_000_000


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
    tb = tokenize(texts)
    doc, sh = shingles(tb, p.ngram)
    sig = signatures(doc, sh, tb.n_docs, p.num_perm, p.method, p.seed)
    n_chars = np.fromiter((len(t) if t else 0 for t in texts), dtype=np.int64, count=len(texts))
    return Sketches(ids, groups, n_chars, exact_hashes(tb), sig, np.diff(tb.offsets))


def text_batches(batches: Iterable[pa.RecordBatch], text_col: str, batch_bytes: int) -> Iterator[pa.Table]:
    """Regroup Arrow record batches into tables of about `batch_bytes` of text."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for rb in batches:
        pending.append(rb)
        size += rb.column(rb.schema.get_field_index(text_col)).nbytes
        if size >= batch_bytes:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def sketch_parquet(path: str, id_col: str, group_col: str, text_col: str, p: SketchParams) -> Sketches:
    """Sketch every row of one Parquet shard (run in a worker process)."""
    parts = []
    # Rows per read: about one batch of R1-length (~20 KB) texts; regrouped by bytes below.
    rows = max(16, p.batch_bytes // 20_000)
    # read_shard_columns: `reasoning` is stored as a span of the completion (issue 15).
    batches = read_shard_columns(path, "traces", [id_col, group_col, text_col], batch_size=rows)
    for tbl in text_batches(batches, text_col, p.batch_bytes):
        parts.append(
            sketch_texts(
                tbl.column(id_col).to_pylist(),
                tbl.column(group_col).to_pylist(),
                [t or "" for t in tbl.column(text_col).to_pylist()],
                p,
            )
        )
    return Sketches.concat(parts, p.num_perm)


def exact_sets_parquet(path: str, id_col: str, text_col: str, wanted: set[str], ngram: int) -> dict[str, np.ndarray]:
    """Sorted unique shingle hashes (truncated to 32 bits) of the rows of `path` whose id is wanted."""
    out: dict[str, np.ndarray] = {}
    for rb in read_shard_columns(path, "traces", [id_col, text_col], batch_size=64):
        ids = rb.column(0).to_pylist()
        keep = [i for i, x in enumerate(ids) if x in wanted]
        if not keep:
            continue
        texts = rb.column(1).to_pylist()
        tb = tokenize([texts[i] or "" for i in keep])
        # 32-bit shingle ids halve the memory; a collision (2**-32 per pair) barely moves Jaccard.
        for i, s in zip(keep, shingle_sets(tb, ngram), strict=True):
            out[ids[i]] = np.unique(s.astype(np.uint32))
    return out
