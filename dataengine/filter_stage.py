"""The filter stage: score traces with `filters/`, store every score and verdict in `filter_results`.

- `run_filter(ws, cfg)` scores traces that lack a result for any enabled filter (a rerun after a
  kill resumes), in batches, on `filter.processes` worker processes, one shard per batch.
- `run_filter(ws, cfg, rethreshold=True)` re-decides every stored verdict from its stored scores
  with the thresholds in `cfg` (no re-scoring: seconds instead of minutes).

Config (section `filter` of the pipeline YAML)::

    filter:
      processes: 2
      readability:
        max_paragraph_words: 400
        by_domain: {code: {max_code_blocks: null}}
      language_mixing:
        min_reasoning_share: 0.9
        by_language: {zh: {min_answer_share: 0.8}}
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from dataengine.config import PipelineConfig, _to_plain, section
from dataengine.store import Workspace
from filters import (
    FilterInput,
    FormatThresholds,
    LanguageMixingThresholds,
    ReadabilityThresholds,
    Thresholds,
    filter_names,
    get_filter,
    safe_decide,
    score_batch,
)

INPUT_COLUMNS = (
    "trace_id", "completion", "reasoning", "answer", "think_closed", "think_format", "finish_reason",
    "domain", "language", "prompt", "completion_tokens", "bucket",
)


@section("filter")
@dataclass
class FilterConfig:
    filters: list[str] = field(default_factory=lambda: ["format", "readability", "language_mixing"],
                               metadata={"help": "filters to run, in funnel order"})
    processes: int = field(default=2, metadata={"help": "worker processes for scoring (1: in-process)"})
    batch_size: int = field(default=500, metadata={"help": "traces per scoring batch and per shard written"})
    lid_backend: Literal["fasttext", "langdetect"] = field(default="fasttext", metadata={"help": "language-ID backend for language_mixing"})
    lid_min_segment_words: int = field(default=5, metadata={"help": "words a Latin sentence needs before language ID judges it"})
    lid_min_confidence: float = field(default=0.5, metadata={"help": "language-ID probability below which a segment counts as the target language"})
    format: FormatThresholds = field(default_factory=FormatThresholds, metadata={"help": "format thresholds"})
    readability: ReadabilityThresholds = field(default_factory=ReadabilityThresholds, metadata={"help": "readability thresholds"})
    language_mixing: LanguageMixingThresholds = field(default_factory=LanguageMixingThresholds, metadata={"help": "language-mixing thresholds"})

    def validate(self) -> None:
        unknown = set(self.filters) - set(filter_names())
        if unknown:
            raise ValueError(f"filters: unknown {sorted(unknown)}; known: {', '.join(filter_names())}")
        if self.processes < 1 or self.batch_size < 1:
            raise ValueError("processes and batch_size must be at least 1")

    def thresholds(self, name: str) -> Thresholds:
        th = getattr(self, name, None)
        return th if isinstance(th, Thresholds) else get_filter(name).thresholds()

    def score_params(self, name: str) -> dict[str, Any]:
        if name == "language_mixing":
            return {"backend": self.lid_backend, "min_segment_words": self.lid_min_segment_words,
                    "min_confidence": self.lid_min_confidence}
        return {}


# ------------------------------------------------------------------------------------ scoring


def score_rows(rows: Sequence[Mapping[str, Any]], names: Sequence[str], fc: FilterConfig,
               config_hash: str, run_id: str) -> list[dict[str, Any]]:
    """`filter_results` rows for a batch of trace rows (a picklable unit of work)."""
    inputs = [FilterInput(**{k: r.get(k) for k in INPUT_COLUMNS}) for r in rows]
    out: list[dict[str, Any]] = []
    for name in names:
        spec = get_filter(name)
        th = fc.thresholds(name)
        for inp, s in zip(inputs, score_batch(spec, inputs, **fc.score_params(name))):
            passed, reason = safe_decide(spec, s, th)
            out.append({"trace_id": inp.trace_id, "filter": name, "passed": passed, "reason": reason,
                        "scores": json.dumps(s, ensure_ascii=False, default=str), "config_hash": config_hash,
                        "run_id": run_id})
    return out


def _done_sql(rescore: bool) -> str:
    return "" if rescore else """
        anti join (select trace_id from filter_results where list_contains($names, filter)
                   group by trace_id having count(distinct filter) = len($names)) d using (trace_id)"""


def _pending_sql(rescore: bool) -> str:
    return f"""
        select t.trace_id, t.completion, t.reasoning, t.answer, t.think_closed, t.think_format,
               t.finish_reason, t.domain, coalesce(t.language, p.language) as language, p.prompt,
               t.completion_tokens, coalesce(t.metadata->>'bucket', 'reasoning') as bucket
        from traces t left join prompts p using (prompt_id){_done_sql(rescore)}
    """


_SCRATCH = "scratch"  # under the workspace root: the batches handed to workers, deleted as read


def score_batch_file(path: str, names: Sequence[str], fc: FilterConfig, config_hash: str,
                     run_id: str) -> tuple[int, dict[str, str], list[dict[str, Any]]]:
    """Score the batch of trace rows in the Arrow IPC file `path` (written by the parent, read
    here memory-mapped, then deleted): (completion bytes, trace_id → bucket, `filter_results` rows)."""
    with pa.memory_map(path) as src:
        rows = pa.ipc.open_file(src).read_all().to_pylist()
    os.unlink(path)
    return _text_bytes(rows), _buckets(rows), score_rows(rows, names, fc, config_hash, run_id)


def _text_bytes(rows: Sequence[Mapping[str, Any]]) -> int:
    return sum(len((r.get("completion") or "").encode("utf-8", "replace")) for r in rows)


def _buckets(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {r["trace_id"]: r.get("bucket") or "reasoning" for r in rows}


def _batches(ws: Workspace, sql: str, params: dict[str, Any], size: int, limit: int | None,
             keep_together: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """Stream query results as lists of `size` row dicts (bounded memory).

    `keep_together`: a column whose equal values never straddle two batches (the query must be
    ordered by it), so per-trace accounting sees all of a trace's rows at once.
    """
    con = ws.connect()
    try:
        if limit is not None:
            sql = f"select * from ({sql}) limit {int(limit)}"
        reader = con.sql(sql, params=params).to_arrow_reader(size)
        buf: list[dict[str, Any]] = []
        for rb in reader:
            for row in rb.to_pylist():
                if len(buf) >= size and (keep_together is None or buf[-1][keep_together] != row[keep_together]):
                    yield buf
                    buf = []
                buf.append(row)
        if buf:
            yield buf
    finally:
        con.close()


def run_filter(ws: Workspace, cfg: PipelineConfig, only: str | None = None, rethreshold: bool = False,
               rescore: bool = False, limit: int | None = None,
               progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run the filter stage; returns counts (traces in, passed all, per filter and reason)."""
    fc: FilterConfig = cfg.section("filter")
    names = [only] if only else list(fc.filters)
    for n in names:
        get_filter(n)  # unknown name → KeyError naming the known filters
    config_hash = cfg.config_hash("filter")
    # One filter run at a time: a second waits, then finds only what the first left unscored.
    with ws.lease("stage:filter"):
        return _run_filter(ws, fc, names, config_hash, only, rethreshold, rescore, limit, progress)


def _run_filter(ws: Workspace, fc: FilterConfig, names: list[str], config_hash: str, only: str | None,
                rethreshold: bool, rescore: bool, limit: int | None,
                progress: Callable[[int], None] | None) -> dict[str, Any]:
    run = ws.start_run("filter", {"filter": _to_plain(fc), "only": only, "rethreshold": rethreshold,
                                  "rescore": rescore, "config_hash": config_hash})
    t0 = time.perf_counter()
    passed_by: Counter[str] = Counter()
    failed_by: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    traces_in = traces_out = shards = 0
    text_bytes = 0
    # The funnel per bucket: reasoning traces and non_reasoning (SFT) rows are scored by their own
    # profile (`by_bucket` thresholds), and reported apart.
    by_bucket: dict[str, dict[str, Any]] = {}

    def account(rows: list[dict[str, Any]], buckets: Mapping[str, str]) -> None:
        nonlocal traces_in, traces_out, shards
        ok: dict[str, bool] = {}
        for r in rows:
            ok[r["trace_id"]] = ok.get(r["trace_id"], True) and bool(r["passed"])
            (passed_by if r["passed"] else failed_by)[r["filter"]] += 1
            if not r["passed"]:
                reasons[f"{r['filter']}:{r['reason']}"] += 1
                b = by_bucket.setdefault(buckets.get(r["trace_id"], "reasoning"), {"in": 0, "out": 0, "reasons": Counter()})
                b["reasons"][f"{r['filter']}:{r['reason']}"] += 1
        for tid, passed in ok.items():
            b = by_bucket.setdefault(buckets.get(tid, "reasoning"), {"in": 0, "out": 0, "reasons": Counter()})
            b["in"] += 1
            b["out"] += passed
        traces_in += len(ok)
        traces_out += sum(ok.values())
        ws.write_shard("filter_results", rows, name=f"{run.run_id}-{shards:06d}")
        shards += 1
        if progress:
            progress(traces_in)

    with run:
        if rethreshold:
            sql = ("select trace_id, filter, scores::varchar as scores from filter_results "
                   "where list_contains($names, filter) order by trace_id")
            for batch in _batches(ws, sql, {"names": names}, max(fc.batch_size, 5000), limit, keep_together="trace_id"):
                rows = []
                buckets: dict[str, str] = {}
                for r in batch:
                    spec = get_filter(r["filter"])
                    s = json.loads(r["scores"]) if r["scores"] else {"error": "no stored scores"}
                    if s.get("bucket") or r["trace_id"] not in buckets:
                        buckets[r["trace_id"]] = s.get("bucket") or "reasoning"
                    ok, reason = safe_decide(spec, s, fc.thresholds(r["filter"]))
                    rows.append({"trace_id": r["trace_id"], "filter": r["filter"], "passed": ok, "reason": reason,
                                 "scores": r["scores"], "config_hash": config_hash, "run_id": run.run_id})
                account(rows, buckets)
        else:
            for nbytes, buckets, rows in _score_all(ws, rescore, limit, names, fc, config_hash, run.run_id):
                text_bytes += nbytes
                account(rows, buckets)
        seconds = time.perf_counter() - t0
        counts = {
            "in": traces_in, "out": traces_out, "quarantined": 0, "shards": shards,
            "passed_by_filter": dict(passed_by), "failed_by_filter": dict(failed_by),
            "reasons": dict(reasons.most_common()),
            "by_bucket": {k: {"in": v["in"], "out": v["out"], "reasons": dict(v["reasons"].most_common())}
                          for k, v in sorted(by_bucket.items())},
            "seconds": round(seconds, 3),
            "mb_per_s": round(text_bytes / 1e6 / seconds, 3) if seconds and text_bytes else None,
        }
        # The runs row keeps the integer counts and one `rejected:<filter>:<reason>` count per reason.
        run.finish({**{k: v for k, v in counts.items() if isinstance(v, int)},
                    **{f"rejected:{k}": v for k, v in reasons.items()},
                    **{f"{k}:{b}": v[k] for b, v in by_bucket.items() for k in ("in", "out")}})
    return {"run_id": run.run_id, "filters": names, "config_hash": config_hash, **counts}


def _score_all(ws: Workspace, rescore: bool, limit: int | None, names: Sequence[str], fc: FilterConfig,
               config_hash: str, run_id: str) -> Iterator[tuple[int, dict[str, str], list[dict[str, Any]]]]:
    """(completion bytes, trace_id → bucket, result rows) per batch, in order; scored on
    `fc.processes` processes.

    One process streams the pending rows itself. With more, the parent streams the pending rows
    from DuckDB as Arrow (no Python object per value) into one Arrow IPC file per batch under
    `<workspace>/scratch/`, and only the file's path goes to a worker, which memory-maps it and
    returns only the results: no text is pickled, and the parent does little besides writing
    shards. (A worker querying its own trace_id range from the `traces` view costs about as much
    as streaming every row, since the view's winners and the Parquet scan are not cut by the
    range: quadratic at scale.) At most 2 batches per worker are in flight, so memory and
    scratch disk stay bounded however many traces there are (Pool.imap would read ahead).
    """
    params = {} if rescore else {"names": names}
    if fc.processes <= 1:
        for rows in _batches(ws, _pending_sql(rescore), params, fc.batch_size, limit):
            yield _text_bytes(rows), _buckets(rows), score_rows(rows, names, fc, config_hash, run_id)
        return
    scratch = ws.root / _SCRATCH / f"filter-{run_id}"
    # One filter run at a time (the stage lease): what an earlier, killed run left is stale.
    shutil.rmtree(ws.root / _SCRATCH, ignore_errors=True)
    scratch.mkdir(parents=True)
    # Not fork: the parent holds DuckDB connections with their own threads, unsafe to fork. A
    # fork server is a fresh process that imports the filters once; each worker forks from it
    # with numpy/pandas/the filters already loaded (spawn paid those ~1.4 CPU-s per worker).
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["dataengine.filter_stage", "filters.readability", "filters.language_mixing",
                                "filters.format", "pandas"])
    try:
        with ctx.Pool(fc.processes) as pool:
            inflight: deque[Any] = deque()
            for k, tbl in enumerate(_arrow_batches(ws, _pending_sql(rescore), params, fc.batch_size, limit)):
                path = scratch / f"{k:06d}.arrow"
                with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, tbl.schema) as w:
                    w.write_table(tbl)
                inflight.append(pool.apply_async(score_batch_file, (str(path), names, fc, config_hash, run_id)))
                if len(inflight) >= 2 * fc.processes:
                    yield inflight.popleft().get()
            while inflight:
                yield inflight.popleft().get()
    finally:
        shutil.rmtree(ws.root / _SCRATCH, ignore_errors=True)


def _arrow_batches(ws: Workspace, sql: str, params: dict[str, Any], size: int, limit: int | None) -> Iterator[pa.Table]:
    """The query's rows as Arrow tables of `size` rows (the last may be shorter), streamed:
    DuckDB hands Arrow over without making a Python object per value."""
    con = ws.connect()
    try:
        if limit is not None:
            sql = f"select * from ({sql}) limit {int(limit)}"
        buf: list[pa.RecordBatch] = []
        n = 0
        for rb in con.sql(sql, params=params).to_arrow_reader(size):
            buf.append(rb)
            n += rb.num_rows
            while n >= size:
                tbl = pa.Table.from_batches(buf)
                yield tbl.slice(0, size).combine_chunks()
                rest = tbl.slice(size)
                buf, n = rest.to_batches(), rest.num_rows
        if n:
            yield pa.Table.from_batches(buf).combine_chunks()
    finally:
        con.close()
