"""Benchmark decontamination by n-gram overlap (open-r1 and s1 use 8-grams; 13 is stricter).

Prompts and benchmark problems are normalised and tokenised exactly as for dedup
(`normalize.tokenize`): word n-grams in English, character n-grams in Chinese and Japanese (each
CJK character is a token). A prompt hits a benchmark item when they share at least `min_hits`
n-grams and at least `min_item_overlap` of the item's n-grams. N-grams found in more than
`max_item_share` benchmark items (across all benchmarks checked together) are stock phrases
("where m and n are relatively prime positive integers") and are ignored, so a prompt that only
shares boilerplate with a benchmark passes.

Known limit: overlap is within one language. A translated problem (OlymMATH's EN and ZH
versions of the same problem) shares no n-gram with its original and is not caught.

>>> idx = BenchmarkIndex(ngram=4)
>>> idx.add("toy", [("t1", "Find the number of ordered pairs of integers with x + y = 10.")])
>>> idx.build()
>>> [(h.item_id, h.ngrams[0]) for h in find_hits(idx, ["p"], ["Please find the NUMBER of ordered pairs!"], 1, 1)]
[('t1', 'find the number of')]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataengine.dedup.config import BenchmarkSpec
from dataengine.dedup.minhash import shingles_at
from dataengine.dedup.normalize import tokenize
from dataengine.readers import RowError, input_format, read_rows

TEXT_FIELDS = ("problem", "question", "prompt", "quiz", "Question", "input", "instruction", "text")
ID_FIELDS = ("id", "unique_id", "idx", "task_id", "question_id")


def load_benchmark(spec: BenchmarkSpec) -> list[tuple[str, str]]:
    """(item id, problem text) of every row of a benchmark file, with a clear error for bad rows."""
    path = Path(spec.path)
    if not path.exists():
        raise FileNotFoundError(f"benchmark file {path} does not exist")
    columns = ["problem", "answer"] if input_format(path) == "tsv" and spec.text_field == "auto" else None
    items = []
    for line, row in read_rows(path, columns=columns):
        if isinstance(row, RowError):
            raise ValueError(f"{path}: row {line}: {row.reason}: {row.detail}")
        field = spec.text_field
        if field == "auto":
            field = next((f for f in TEXT_FIELDS if isinstance(row.get(f), str) and row[f].strip()), "")
            if not field:
                raise ValueError(f"{path}: row {line}: no problem text in any of {', '.join(TEXT_FIELDS)}; set field")
        text = row.get(field)
        if not isinstance(text, str):
            raise ValueError(f"{path}: row {line}: field {field!r} is {type(text).__name__}, expected string")
        id_field = spec.id_field
        if id_field == "auto":
            id_field = next((f for f in ID_FIELDS if row.get(f) is not None), "")
        item_id = str(row[id_field]) if id_field and row.get(id_field) is not None else str(line)
        items.append((item_id, text))
    return items


@dataclass
class Hit:
    prompt_id: str
    benchmark: str
    item_id: str
    shared: int  # distinct n-grams shared
    item_ngrams: int  # distinct n-grams of the benchmark item
    ngrams: list[str]  # some of them, normalised


class BenchmarkIndex:
    """Sorted n-gram hashes of every item of every benchmark, for vectorised lookups."""

    def __init__(self, ngram: int = 8, max_item_share: int = 10):
        self.ngram, self.max_item_share = ngram, max_item_share
        self.names: list[str] = []
        self.item_ids: list[list[str]] = []
        self.item_ngrams: list[np.ndarray] = []  # distinct n-grams per item, per benchmark
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.n_items = 0
        self.n_stock = 0
        self.short_lengths: set[int] = set()

    def add(self, name: str, items: list[tuple[str, str]]) -> None:
        b = len(self.names)
        self.names.append(name)
        self.item_ids.append([i for i, _ in items])
        self.n_items += len(items)
        hashes, item = [], []
        for s in range(0, len(items), 2000):
            tb = tokenize([t for _, t in items[s : s + 2000]])
            doc, sh, _ = shingles_at(tb, self.ngram)
            # An item shorter than n tokens is one shingle of all its L tokens, which equals the
            # L-gram hash of the same tokens inside a prompt: find_hits looks those lengths up too.
            # Items of one or two tokens are too generic to mean anything and are left out.
            lengths = np.diff(tb.offsets)
            self.short_lengths.update(int(x) for x in np.unique(lengths[(lengths < self.ngram) & (lengths >= 3)]))
            ok = (lengths[doc] >= 3)
            hashes.append(sh[ok])
            item.append(doc[ok] + s)
        h = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
        it = np.concatenate(item) if item else np.zeros(0, dtype=np.int64)
        # One entry per (n-gram, item).
        order = np.lexsort((it, h))
        h, it = h[order], it[order]
        keep = np.r_[True, (h[1:] != h[:-1]) | (it[1:] != it[:-1])] if len(h) else np.zeros(0, dtype=bool)
        h, it = h[keep], it[keep]
        self.item_ngrams.append(np.bincount(it, minlength=len(items)))
        self._parts.append((h, np.full(len(h), b, dtype=np.int32), it.astype(np.int32)))

    def build(self) -> None:
        """Merge the benchmarks into one sorted index; drop stock phrases.

        A stock phrase is an n-gram found in more than `max_item_share` items across all
        benchmarks ("where m and n are relatively prime positive integers"): boilerplate that
        any honest prompt may share, not evidence of contamination.
        """
        h = np.concatenate([p[0] for p in self._parts]) if self._parts else np.zeros(0, dtype=np.uint64)
        bench = np.concatenate([p[1] for p in self._parts]) if self._parts else np.zeros(0, dtype=np.int32)
        item = np.concatenate([p[2] for p in self._parts]) if self._parts else np.zeros(0, dtype=np.int32)
        order = np.argsort(h, kind="stable")
        h, bench, item = h[order], bench[order], item[order]
        if self.max_item_share and len(h):
            starts = np.r_[True, h[1:] != h[:-1]]
            run = np.cumsum(starts) - 1
            stock = np.bincount(run)[run] > self.max_item_share
            self.n_stock = int(starts[stock].sum())
            h, bench, item = h[~stock], bench[~stock], item[~stock]
        self.hashes, self.bench, self.item = h, bench, item
        self._parts = []


def find_hits(
    index: BenchmarkIndex, ids: list[str], texts: list[str], min_hits: int = 1, report: int = 5, min_item_overlap: float = 0.0
) -> list[Hit]:
    """Every (prompt, benchmark item) pair sharing at least `min_hits` n-grams and at least
    `min_item_overlap` of the item's n-grams (a planted problem shares nearly all of them; a
    prompt that shares one phrase with a long problem shares a few percent)."""
    tb = tokenize(texts)
    found: dict[tuple[int, int, int], dict[int, tuple[int, int]]] = {}  # (doc, bench, item) -> {hash: (start, length)}
    for length in [index.ngram, *sorted(index.short_lengths)]:
        doc, sh, start = shingles_at(tb, length)
        lo = np.searchsorted(index.hashes, sh, side="left")
        hi = np.searchsorted(index.hashes, sh, side="right")
        for k in np.flatnonzero(hi > lo).tolist():
            for e in range(lo[k], hi[k]):
                key = (int(doc[k]), int(index.bench[e]), int(index.item[e]))
                found.setdefault(key, {}).setdefault(int(sh[k]), (int(start[k]), length))
    hits = []
    for (d, b, i), grams in sorted(found.items()):
        if len(grams) < min_hits or len(grams) < min_item_overlap * index.item_ngrams[b][i]:
            continue
        shown = []
        for first, length in sorted(grams.values())[:report]:
            last = min(first + length, int(tb.offsets[d + 1]))
            shown.append(" ".join(tb.token_text(t) for t in range(first, last)))
        hits.append(Hit(ids[d], index.names[b], index.item_ids[b][i], len(grams), int(index.item_ngrams[b][i]), shown))
    return hits
