"""The dedup and decontaminate stages: `run_dedup` and `run_decontaminate`.

dedup, in order:
1. prompts: exact groups of normalised prompt text, then MinHash near-duplicate clusters across
   all prompts (the same problem from two datasets) -> `dedup_prompts`;
2. traces, streamed shard by shard through worker processes: exact hash and signature of each
   completion;
3. exact groups of traces; one representative each by the configured preference;
4. near-duplicates among the exact representatives, compared only within a prompt cluster;
5. one `dedup` row per trace: exact group, near-dup cluster (its representative's trace id),
   is_representative (representative of both), prompt group and cluster, and the contamination
   JSON the last decontaminate run left there.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from dataengine import sqlfiles
from dataengine.config import PipelineConfig, apply_overrides
from dataengine.dedup.cluster import near_duplicates, pick_representatives
from dataengine.dedup.config import DecontamConfig, DedupConfig
from dataengine.dedup.minhash import shingle_sets, sorted_unique
from dataengine.dedup.normalize import tokenize
from dataengine.dedup.sketch import Sketches, SketchParams, exact_sets_parquet, sketch_parquet, sketch_texts
from dataengine.records import content_hash
from dataengine.store import Workspace

OUT_ROWS = 200_000  # rows per output shard
# spawn, not fork: the parent holds DuckDB and Arrow thread pools, and a forked child that
# touches a lock one of those threads held would hang.
_SPAWN = mp.get_context("spawn")


def _params(c: DedupConfig) -> SketchParams:
    return SketchParams(c.ngram, c.num_perm, c.method, c.seed, c.batch_bytes)


def _tie(ids: list[str], seed: int) -> np.ndarray:
    """A seeded pseudo-random tie-break per id (stable across runs for the same seed)."""
    return np.fromiter((int(content_hash("tie", seed, i)[:15], 16) for i in ids), dtype=np.int64, count=len(ids))


def _workers(c: DedupConfig) -> int:
    return c.workers or os.cpu_count() or 1


# --------------------------------------------------------------------------------------------
# prompts
# --------------------------------------------------------------------------------------------


def _sketch_prompts(ws: Workspace, c: DedupConfig) -> tuple[Sketches, list[str]]:
    con = ws.connect()
    try:
        reader = con.sql("select prompt_id, coalesce(source, '') as source, prompt from prompts order by prompt_id").to_arrow_reader(
            batch_size=max(512, c.batch_bytes // 500)
        )
        parts, sources = [], []
        for rb in reader:
            ids = rb.column(0).to_pylist()
            sources += rb.column(1).to_pylist()
            parts.append(sketch_texts(ids, ids, [t or "" for t in rb.column(2).to_pylist()], _params(c)))
    finally:
        con.close()
    return Sketches.concat(parts, c.num_perm), sources


def _prompt_exact_sets(ws: Workspace, ids: list[str], ngram: int):  # type: ignore[no-untyped-def]
    def read(idx: np.ndarray) -> dict[int, np.ndarray]:
        wanted = [ids[i] for i in idx.tolist()]
        pos = {pid: i for i, pid in zip(idx.tolist(), wanted, strict=True)}
        con = ws.connect()
        try:
            con.register("wanted", pa.table({"prompt_id": wanted}))
            rows = con.sql("select prompt_id, prompt from prompts where prompt_id in (select prompt_id from wanted)").fetchall()
        finally:
            con.close()
        sets = shingle_sets(tokenize([r[1] or "" for r in rows]), ngram)
        return {pos[r[0]]: sorted_unique(s.astype(np.uint32)) for r, s in zip(rows, sets, strict=True)}

    return read


def _trace_exact_sets(files: list[str], file_of: np.ndarray, ids: list[str], text_col: str, ngram: int, workers: int):  # type: ignore[no-untyped-def]
    """Reader of exact shingle sets for candidate traces: only the shards that hold one, in parallel."""

    def read(idx: np.ndarray) -> dict[int, np.ndarray]:
        pos = {ids[i]: i for i in idx.tolist()}
        by_file: dict[int, set[str]] = {}
        for i in idx.tolist():
            by_file.setdefault(int(file_of[i]), set()).add(ids[i])
        jobs = sorted(by_file)
        args = ([files[f] for f in jobs], ["trace_id"] * len(jobs), [text_col] * len(jobs), [by_file[f] for f in jobs], [ngram] * len(jobs))
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=_SPAWN) as pool:
                found = list(pool.map(exact_sets_parquet, *args))
        else:
            found = [exact_sets_parquet(*a) for a in zip(*args, strict=True)]
        return {pos[tid]: s for part in found for tid, s in part.items()}

    return read


# --------------------------------------------------------------------------------------------
# dedup
# --------------------------------------------------------------------------------------------


def run_dedup(ws: Workspace, cfg: PipelineConfig, **overrides: Any) -> dict[str, Any]:
    """Exact and near-duplicate dedup of prompts and traces; writes `dedup` and `dedup_prompts`.

    Returns the run's counts: traces in, representatives out, exact and near duplicates, clusters,
    candidate and verified pairs, and the Jaccard threshold the bands imply.
    """
    c: DedupConfig = apply_overrides(cfg.section("dedup"), overrides)
    c.validate()
    run = ws.start_run("dedup", {"dedup": asdict(c)})
    with run:
        con = duckdb.connect()
        counts: dict[str, Any] = {"implied_threshold": round(c.implied_threshold, 4), "threshold": c.threshold}
        timings: dict[str, float] = {}
        clock = [time.perf_counter()]

        def lap(name: str) -> None:
            now = time.perf_counter()
            timings[name] = round(now - clock[0], 2)
            clock[0] = now

        # 1. prompts ---------------------------------------------------------------------------
        psk, psources = _sketch_prompts(ws, c)
        pn = len(psk.ids)
        pstatus = np.zeros(pn, dtype=np.int64)
        ptie = _tie(psk.ids, c.seed)
        pexact_codes = _codes(psk.exact)
        prep_exact = pick_representatives(con, pexact_codes, pstatus, psk.n_chars, ptie, ["shorter", "seeded"])
        if c.prompt_level and pn > 1:
            pres = near_duplicates(
                con, psk.sig, np.zeros(pn, dtype=np.int64), prep_exact == np.arange(pn),
                bands=c.bands, rows=c.rows, threshold=c.prompt_threshold, verify=c.verify, max_bucket=c.max_bucket,
                exact_sets=_prompt_exact_sets(ws, psk.ids, c.ngram),
            )
            plabels = pres.labels[prep_exact]  # exact duplicates follow their representative
            counts["prompt_candidate_pairs"], counts["prompt_verified_pairs"] = pres.candidate_pairs, pres.verified_pairs
        else:
            plabels = prep_exact.copy()
        prep = pick_representatives(con, plabels, pstatus, psk.n_chars, ptie, ["shorter", "seeded"])
        p_cluster = [psk.ids[r] for r in prep.tolist()]
        counts["prompts"] = pn
        counts["prompt_exact_duplicates"] = int((prep_exact != np.arange(pn)).sum())
        counts["prompt_clusters"] = int(len(np.unique(plabels)))
        counts["prompt_duplicates"] = int((prep != np.arange(pn)).sum())
        contam = contamination_by_prompt(ws)
        _write_rows(
            ws, "dedup_prompts", run.run_id,
            {
                "prompt_id": psk.ids,
                "source": psources,
                "exact_group": psk.exact,
                "near_dup_cluster": p_cluster,
                "is_representative": (prep == np.arange(pn)).tolist(),
                "contamination": [contam.get(p) for p in psk.ids],
            },
        )
        lap("prompts")
        prompt_cluster_of = dict(zip(psk.ids, p_cluster, strict=True))
        prompt_exact_of = dict(zip(psk.ids, psk.exact, strict=True))
        del psk

        # 2. traces: hash every shard in worker processes ---------------------------------------
        files = [str(p) for p in ws.shards("traces")]
        text_col = c.text
        params = _params(c)
        if _workers(c) > 1 and len(files) > 1:
            with ProcessPoolExecutor(max_workers=min(_workers(c), len(files)), mp_context=_SPAWN) as pool:
                parts = list(pool.map(sketch_parquet, files, ["trace_id"] * len(files), ["prompt_id"] * len(files),
                                      [text_col] * len(files), [params] * len(files)))
        else:
            parts = [sketch_parquet(f, "trace_id", "prompt_id", text_col, params) for f in files]
        file_of = np.repeat(np.arange(len(parts)), [len(p.ids) for p in parts])
        sk = Sketches.concat(parts, c.num_perm)
        del parts
        n = len(sk.ids)
        counts["in"] = n
        lap("sketch_traces")

        # 3. exact groups ----------------------------------------------------------------------
        status = _trace_status(ws, sk.ids)
        tie = _tie(sk.ids, c.seed)
        pclusters = [prompt_cluster_of.get(p, p) for p in sk.groups]
        # Exact duplicates are the same normalised completion for the same problem (prompt
        # cluster), like near-duplicates: one completion under two unrelated prompts is two samples.
        exact_group = [content_hash("exact", pc, h)[:32] for pc, h in zip(pclusters, sk.exact, strict=True)]
        ecodes = _codes(exact_group)
        rep_exact = pick_representatives(con, ecodes, status, sk.n_chars, tie, c.preference)
        is_exact_rep = rep_exact == np.arange(n)
        lap("exact_groups")

        # 4. near-duplicates within a prompt cluster -------------------------------------------
        res = near_duplicates(
            con, sk.sig, _codes(pclusters), is_exact_rep,
            bands=c.bands, rows=c.rows, threshold=c.threshold, verify=c.verify, max_bucket=c.max_bucket,
            exact_sets=_trace_exact_sets(files, file_of, sk.ids, text_col, c.ngram, _workers(c)),
        )
        lap("near_duplicates")
        labels = res.labels[rep_exact]
        rep_near = pick_representatives(con, labels, status, sk.n_chars, tie, c.preference)
        is_rep = rep_near == np.arange(n)
        con.close()

        # 5. write ------------------------------------------------------------------------------
        _write_rows(
            ws, "dedup", run.run_id,
            {
                "trace_id": sk.ids,
                "prompt_id": sk.groups,
                "exact_group": exact_group,
                "near_dup_cluster": [sk.ids[r] for r in rep_near.tolist()],
                "completion_hash": sk.exact,
                "is_representative": is_rep.tolist(),
                "contamination": [contam.get(p) for p in sk.groups],
                "prompt_exact_group": [prompt_exact_of.get(p) for p in sk.groups],
                "prompt_cluster": pclusters,
            },
        )
        counts.update(
            out=int(is_rep.sum()),
            exact_duplicates=int((~is_exact_rep).sum()),
            exact_groups=int(len(np.unique(ecodes))),
            near_duplicates=int(is_exact_rep.sum() - is_rep.sum()),
            near_dup_clusters=int(len(np.unique(labels))),
            candidate_pairs=res.candidate_pairs,
            verified_pairs=res.verified_pairs,
            empty_texts=int((sk.n_tokens == 0).sum()),
        )
        lap("write")
        counts["seconds"] = timings
        run.finish(counts)
    counts["run_id"] = run.run_id
    return counts


def _codes(values: list[str]) -> np.ndarray:
    """Dense int64 codes of string values (equal strings, equal codes)."""
    if not values:
        return np.zeros(0, dtype=np.int64)
    return pa.array(values).dictionary_encode().indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _trace_status(ws: Workspace, ids: list[str]) -> np.ndarray:
    con = ws.connect()
    try:
        tbl = con.sql(sqlfiles.load("dedup/trace_status")).to_arrow_table()
    finally:
        con.close()
    got = dict(zip(tbl.column("trace_id").to_pylist(), tbl.column("status").to_pylist(), strict=True))
    return np.fromiter((got.get(t, 0) for t in ids), dtype=np.int64, count=len(ids))


def contamination_by_prompt(ws: Workspace, report: int = 5) -> dict[str, str]:
    """Per prompt, the contamination JSON built from the newest decontaminate run per benchmark:
    ``{"math500": {"items": [...], "ngrams": [...]}}``. dedup and decontaminate both use it, so
    the order in which the two stages run does not matter."""
    con = ws.connect()
    try:
        rows = con.sql(sqlfiles.load("dedup/latest_hits")).fetchall()
    finally:
        con.close()
    per_prompt: dict[str, dict[str, Any]] = {}
    for prompt_id, bench, item_id, ngrams in rows:
        entry = per_prompt.setdefault(prompt_id, {}).setdefault(bench, {"items": [], "ngrams": []})
        entry["items"].append(item_id)
        for g in json.loads(ngrams or "[]"):
            if g not in entry["ngrams"] and len(entry["ngrams"]) < report:
                entry["ngrams"].append(g)
    return {p: json.dumps(d, ensure_ascii=False, sort_keys=True) for p, d in per_prompt.items()}


def _write_rows(ws: Workspace, table: str, run_id: str, cols: dict[str, list[Any]]) -> None:
    n = len(next(iter(cols.values())))
    for s in range(0, n, OUT_ROWS):
        part = {k: v[s : s + OUT_ROWS] for k, v in cols.items()}
        part["run_id"] = [run_id] * len(next(iter(part.values())))
        ws.write_shard(table, pa.table(part), name=f"{run_id}-{s // OUT_ROWS:05d}")


# --------------------------------------------------------------------------------------------
# decontaminate
# --------------------------------------------------------------------------------------------


def run_decontaminate(
    ws: Workspace, cfg: PipelineConfig, benchmarks: dict[str, str] | None = None, **overrides: Any
) -> dict[str, Any]:
    """Check every prompt for n-gram overlap with the configured (and given) benchmark files.

    Writes `contamination_hits` (which prompts hit which benchmark items, with the shared
    n-grams) and updates the contamination JSON of `dedup_prompts` and `dedup`.
    """
    from dataengine.dedup.config import BenchmarkSpec
    from dataengine.dedup.decontam import BenchmarkIndex, find_hits, load_benchmark

    c: DecontamConfig = apply_overrides(cfg.section("decontaminate"), overrides)
    c.validate()
    specs = dict(c.benchmarks)
    for name, path in (benchmarks or {}).items():
        specs[name] = BenchmarkSpec(path=path)
    if not specs:
        raise ValueError("no benchmarks: name them in decontaminate.benchmarks or pass --benchmark NAME=PATH")
    run = ws.start_run("decontaminate", {"decontaminate": asdict(c) | {"benchmarks": {k: asdict(v) for k, v in specs.items()}}})
    with run:
        index = BenchmarkIndex(c.ngram, c.max_item_share)
        for name, spec in specs.items():
            index.add(name, load_benchmark(spec))
        index.build()
        con = ws.connect()
        try:
            reader = con.sql("select prompt_id, prompt from prompts order by prompt_id").to_arrow_reader(batch_size=20_000)
            hits = []
            n_prompts = 0
            for rb in reader:
                ids = rb.column(0).to_pylist()
                n_prompts += len(ids)
                hits += find_hits(index, ids, [t or "" for t in rb.column(1).to_pylist()], c.min_hits, c.report_ngrams, c.min_item_overlap)
        finally:
            con.close()
        rows = [
            {"run_id": run.run_id, "benchmark": name, "prompt_id": None, "item_id": None, "shared_ngrams": None,
             "ngrams": None, "ngram_n": c.ngram, "benchmark_path": specs[name].path}
            for name in specs
        ]
        for h in hits:
            rows.append({"run_id": run.run_id, "benchmark": h.benchmark, "prompt_id": h.prompt_id, "item_id": h.item_id,
                         "shared_ngrams": h.shared, "ngrams": json.dumps(h.ngrams, ensure_ascii=False),
                         "ngram_n": c.ngram, "benchmark_path": specs[h.benchmark].path})
        ws.write_shard("contamination_hits", rows, name=f"{run.run_id}-hits")
        _update_contamination(ws, run.run_id, contamination_by_prompt(ws, c.report_ngrams))
        contaminated = {h.prompt_id for h in hits}
        by_bench = {name: len({h.prompt_id for h in hits if h.benchmark == name}) for name in specs}
        counts: dict[str, Any] = {
            "in": n_prompts,
            "out": n_prompts - len(contaminated),
            "contaminated_prompts": len(contaminated),
            "hits": len(hits),
            "ngram": c.ngram,
            "prompts_hit_per_benchmark": by_bench,
            "benchmark_items": index.n_items,
            "stock_ngrams_ignored": index.n_stock,
        }
        run.finish(counts)
    counts["run_id"] = run.run_id
    return counts


def _update_contamination(ws: Workspace, run_id: str, contam: dict[str, str]) -> None:
    """Rewrite the current `dedup_prompts` and `dedup` rows whose contamination JSON changed.

    The rows keep the run_id of the dedup run that grouped them; the hits carry their own run."""
    con = ws.connect()
    try:
        prompts = con.sql("select * exclude (written_at) replace (contamination::varchar as contamination) from dedup_prompts").to_arrow_table()
        traces = con.sql("select * exclude (written_at) replace (contamination::varchar as contamination) from dedup").to_arrow_table()
    finally:
        con.close()
    for table, tbl in (("dedup_prompts", prompts), ("dedup", traces)):
        if tbl.num_rows == 0:
            continue
        old = tbl.column("contamination").to_pylist()
        new = [contam.get(p) for p in tbl.column("prompt_id").to_pylist()]
        changed = np.flatnonzero([(json.loads(o) if o else None) != (json.loads(n) if n else None) for o, n in zip(old, new, strict=True)])
        if len(changed) == 0:
            continue
        tbl = tbl.take(changed)
        tbl = tbl.set_column(tbl.schema.get_field_index("contamination"), "contamination", pa.array([new[i] for i in changed], pa.string()))
        for s in range(0, tbl.num_rows, OUT_ROWS):
            ws.write_shard(table, tbl.slice(s, OUT_ROWS), name=f"{run_id}-{table}-{s // OUT_ROWS:05d}")
