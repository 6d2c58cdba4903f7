"""Dedup: quality against exact Jaccard, speed per core against datasketch, and the full stage at scale.

1. Quality: real traces (R1-distill / QwQ responses from ../shared/data) plus generated
   near-duplicates at edit rates around the threshold. Every pair's exact Jaccard of word
   5-gram sets is the truth; ours (MinHash LSH, two verification modes) and datasketch's
   MinHashLSH (same threshold, 128 permutations) are scored against it.
2. Speed per core: the same documents through our sketching (tokenise, exact hash, signature,
   band keys) and through datasketch's MinHash.update_batch + MinHashLSH.insert, one process.
3. Scale: N generated R1-length traces (~20 KB: sentences of real traces shuffled, so unrelated
   traces share almost nothing) with planted exact and near-duplicate clusters, written as
   Parquet shards to a workspace, then `run_dedup` in a fresh process: wall time and peak RSS,
   extrapolated linearly to 800k.

    python bench/bench_dedup.py --n 20000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _harness import ROOT, SHARED_DATA, print_table, run_isolated

sys.path.insert(0, str(ROOT))
# The near-duplicate generator the dedup tests use: one definition for tests and bench.
sys.path.insert(0, str(ROOT / "tests" / "dedup"))
from dedup_fixtures import mutate, near_dup_sample  # noqa: E402

THRESHOLD = 0.7


def real_responses() -> list[str]:
    path = SHARED_DATA / "traces" / "thinking_llms_interp" / "r1distill_qwq_benchmark_traces.jsonl"
    return [json.loads(x)["response"] for x in open(path, encoding="utf-8")]


def word5_plain(text: str) -> list[bytes]:
    """datasketch as usually fed: lower().split() word 5-grams (cheaper than our normalisation)."""
    w = text.lower().split()
    if len(w) < 5:
        return [" ".join(w).encode()]
    return [" ".join(w[i : i + 5]).encode() for i in range(len(w) - 4)]


def word5(text: str) -> list[bytes]:
    """datasketch's input: the same normalised tokens as ours, as 5-gram byte strings."""
    from dataengine.dedup.normalize import normalize

    w = normalize(text).split()
    if len(w) < 5:
        return [" ".join(w).encode()]
    return [" ".join(w[i : i + 5]).encode() for i in range(len(w) - 4)]


# --------------------------------------------------------------------------------------------
# 1. quality
# --------------------------------------------------------------------------------------------


def quality(n_base: int, seed: int = 11) -> list[tuple[str, str, str]]:
    import duckdb
    import numpy as np
    from datasketch import MinHash, MinHashLSH

    from dataengine.dedup.cluster import near_duplicates
    from dataengine.dedup.minhash import exact_jaccard, shingle_sets, shingles, signatures
    from dataengine.dedup.normalize import tokenize

    texts = near_dup_sample(real_responses(), n_base, seed)
    n = len(texts)
    tb = tokenize(texts)
    sets = shingle_sets(tb, 5)
    truth = {(i, j) for i in range(n) for j in range(i + 1, n) if exact_jaccard(sets[i], sets[j]) >= THRESHOLD}

    def score(edges: set[tuple[int, int]], labels: np.ndarray | None) -> tuple[float, float]:
        if labels is None:  # datasketch: pairs it returns as neighbours
            rec = len(edges & truth) / len(truth)
        else:
            rec = sum(labels[i] == labels[j] for i, j in truth) / len(truth)
        prec = sum(exact_jaccard(sets[i], sets[j]) >= THRESHOLD for i, j in edges) / max(1, len(edges))
        return rec, prec

    rows = [("sample", f"{n} traces, {n * (n - 1) // 2} pairs", f"{len(truth)} pairs with J >= {THRESHOLD}")]
    ours_edges = {}
    ours_secs: dict[str, float] = {}
    for verify in ("exact", "signature"):
        t0 = time.perf_counter()
        doc, sh = shingles(tokenize(texts), 5)
        sig = signatures(doc, sh, n, 128)
        res = near_duplicates(
            duckdb.connect(), sig, np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool), bands=25, rows=5,
            threshold=THRESHOLD, verify=verify, max_bucket=64, exact_sets=lambda idx: {int(i): sets[i] for i in idx},
        )
        secs = time.perf_counter() - t0
        ours_secs[verify] = secs
        edges = {(min(a, b), max(a, b)) for a, b in zip(res.a.tolist(), res.b.tolist(), strict=True)}
        ours_edges[verify] = (edges, res.labels)
        rec, prec = score(edges, res.labels)
        rows.append((f"ours verify={verify}: recall / precision", f"{rec:.3f} / {prec:.3f}", f"{secs:.2f}s wall"))

    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=128)
    mhs = []
    for i, t in enumerate(texts):
        m = MinHash(num_perm=128)
        m.update_batch(word5(t))
        lsh.insert(str(i), m)
        mhs.append(m)
    ds_edges = set()
    for i, m in enumerate(mhs):
        for k in lsh.query(m):
            j = int(k)
            if j != i:
                ds_edges.add((min(i, j), max(i, j)))
    ds_secs = time.perf_counter() - t0
    rec, prec = score(ds_edges, None)
    rows.append(("datasketch MinHashLSH (candidates): recall / precision", f"{rec:.3f} / {prec:.3f}",
                 f"{ds_secs:.2f}s wall; ours(exact) takes {ours_secs['exact'] / ds_secs:.2f}x its time"))
    # Agreement: of the pairs either side calls near-duplicate (same cluster for ours), how many both do.
    labels = ours_edges["exact"][1]
    ours_pairs = {(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j]}
    agree = len(ours_pairs & ds_edges) / max(1, len(ours_pairs | ds_edges))
    rows.append(("agreement ours(exact) vs datasketch", f"{agree:.3f}", f"|ours|={len(ours_pairs)} |ds|={len(ds_edges)}"))
    ds_filtered = {(i, j) for i, j in ds_edges if (mhs[i].jaccard(mhs[j]) >= THRESHOLD)}
    agree2 = len(ours_edges["signature"][0] & ds_filtered) / max(1, len(ours_edges["signature"][0] | ds_filtered))
    rows.append(("agreement ours(signature) vs datasketch+estimate", f"{agree2:.3f}", "both filtered by est. J >= 0.7"))
    return rows


# --------------------------------------------------------------------------------------------
# 3. generated R1-length traces
# --------------------------------------------------------------------------------------------


def make_workspace(root: Path, n: int, seed: int = 5) -> dict:
    """N traces of ~20 KB from shuffled real sentences; 4% of bases get 1-4 planted duplicates."""
    import numpy as np
    import pyarrow as pa

    from dataengine.records import content_hash
    from dataengine.store import Workspace

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    sentences = [s for t in real_responses() for s in re.split(r"(?<=[.!?\n])\s+", t) if len(s) > 20]
    sent = np.array(sentences, dtype=object)
    ws = Workspace.init(root)
    per_prompt = 8
    n_prompts = max(1, n // per_prompt)
    prompt_ids = [content_hash("bench-prompt", i) for i in range(n_prompts)]
    ws.write_shard("prompts", pa.table({"prompt_id": prompt_ids,
                                        "prompt": [f"Bench problem {i}: {rng.choice(sentences)}" for i in range(n_prompts)],
                                        "source": ["bench"] * n_prompts}))
    planted_exact = planted_near = 0
    shard, written, total_bytes = [], 0, 0
    mean_sentences = 20_000 // int(np.mean([len(s) for s in sentences[:5000]]) + 1)

    def flush() -> None:
        nonlocal shard
        if shard:
            ws.write_shard("traces", pa.table({
                "trace_id": [r[0] for r in shard], "prompt_id": [r[1] for r in shard],
                "sample_idx": pa.array([r[2] for r in shard], pa.int32()), "completion": [r[3] for r in shard]}))
            shard = []

    i = 0
    while written < n:
        pid = prompt_ids[(written // per_prompt) % n_prompts]
        picks = nrng.integers(0, len(sent), size=mean_sentences)
        text = " ".join(sent[picks])
        group = [text]
        if rng.random() < 0.04:
            for _ in range(rng.randint(1, 4)):
                if rng.random() < 0.3:
                    group.append(text.upper())
                    planted_exact += 1
                else:
                    group.append(mutate(text, rng.uniform(0.002, 0.02), rng))
                    planted_near += 1
        for t in group:
            if written >= n:
                break
            shard.append((content_hash("bench-trace", i), pid, i % per_prompt, t))
            total_bytes += len(t.encode())
            written += 1
            i += 1
            if len(shard) >= 2000:
                flush()
    flush()
    return {"traces": written, "mb": total_bytes / 1e6, "planted_exact": planted_exact, "planted_near": planted_near}


def cluster_at_scale(n: int) -> list[tuple[str, str, str]]:
    """The in-memory half of the stage at full size, without text: n random 128-slot signatures
    with 4% planted near-copies (10% of slots changed), all in one prompt cluster (worst case for
    bucket sizes), through LSH candidates, signature verification, connected components and
    representative choice in DuckDB."""
    m = run_isolated(f"""
        import numpy as np, duckdb
        from dataengine.dedup.cluster import near_duplicates, pick_representatives
        from dataengine.records import content_hash
        n = {n}
        rng = np.random.default_rng(0)
        sig = rng.integers(0, 2**32 - 1, size=(n, 128), dtype=np.uint32)
        src, dst = rng.integers(0, n, size=n // 25), rng.integers(0, n, size=n // 25)
        noise = rng.random((len(dst), 128)) < 0.1
        sig[dst] = np.where(noise, rng.integers(0, 2**32 - 1, size=(len(dst), 128), dtype=np.uint32), sig[src])
        ids = [content_hash("t", i) for i in range(n)]  # what the stage holds per trace
        T0 = time.perf_counter()
        con = duckdb.connect()
        res = near_duplicates(con, sig, np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool), bands=25, rows=5,
                              threshold=0.7, verify="signature", max_bucket=64)
        rep = pick_representatives(con, res.labels, np.zeros(n, dtype=np.int64), rng.integers(1000, 40000, n),
                                   rng.integers(0, 2**62, n), ["accepted", "shorter", "seeded"])
        RESULT["seconds"] = time.perf_counter() - T0
        RESULT["cand"], RESULT["verified"] = res.candidate_pairs, res.verified_pairs
        RESULT["planted"] = len(set(dst.tolist()) - set(src.tolist()))
        RESULT["removed"] = int((rep != np.arange(n)).sum())
    """)
    r = m.result
    return [
        ("LSH + verify + components + representatives", f"{m.seconds:.0f} s", f"load avg {_load()}"),
        ("peak RSS", f"{m.peak_rss_mb:.0f} MB", "goal < 8 GiB with 2 sketch workers (~0.4 GB each)"),
        ("candidate / verified pairs", f"{r['cand']} / {r['verified']}", f"{n // 25} planted copies"),
        ("traces marked duplicate", f"{r['removed']}", "copies of copies chain into one cluster"),
    ]


def _load() -> str:
    import os

    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000, help="generated traces for the scale run")
    ap.add_argument("--quality-base", type=int, default=200, help="real traces in the quality sample")
    ap.add_argument("--speed-docs", type=int, default=600, help="generated traces for the per-core speed race")
    ap.add_argument("--cluster-n", type=int, default=800_000, help="signatures for the in-memory clustering at scale")
    ap.add_argument("--sections", default="quality,stage,cluster", help="comma-separated: quality, stage (speed + scale), cluster")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    if "cluster" in sections:
        print_table(f"In-memory clustering at {args.cluster_n} traces (signatures only)", cluster_at_scale(args.cluster_n))
    if "stage" not in sections and "quality" not in sections:
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-dedup-"))
    try:
        if "quality" in sections:
            rows = quality(args.quality_base)
            print_table("Quality against exact Jaccard (word 5-grams, threshold 0.7, 128 perms, 25x5 bands)", rows)
        if "stage" not in sections:
            return

        t0 = time.perf_counter()
        info = make_workspace(tmp / "ws", args.n)
        gen_s = time.perf_counter() - t0

        # 2. per-core speed on the same generated documents (one process each)
        speed_code = f"""
            import pyarrow.parquet as pq, glob
            files = sorted(glob.glob({str(tmp / 'ws' / 'tables' / 'traces' / '*.parquet')!r}))
            files = [f for f in files if not f.endswith('_schema.parquet')]
            texts = pq.read_table(files[0], columns=['completion']).column(0).to_pylist()[:{args.speed_docs}]
            RESULT['mb'] = sum(len(t.encode()) for t in texts) / 1e6
            RESULT['docs'] = len(texts)
        """
        ours = run_isolated(speed_code + """
            # as the stage hashes a shard: the Arrow column's UTF-8 buffers, in byte-sized slices
            import pyarrow as pa
            from dataengine.dedup.sketch import SketchParams, byte_slices, sketch_arrow
            from dataengine.dedup.minhash import band_keys
            ids = [str(i) for i in range(len(texts))]
            rb = pa.record_batch({'id': ids, 'completion': texts})
            T0 = time.perf_counter(); C0 = time.process_time()
            p = SketchParams()
            for sl in byte_slices(rb, 'completion', p.batch_bytes):
                sk = sketch_arrow(sl.column(0).to_pylist(), sl.column(0).to_pylist(), sl.column(1), p)
                band_keys(sk.sig, 25, 5)
            RESULT['seconds'] = time.perf_counter() - T0
            RESULT['cpu'] = time.process_time() - C0
        """)
        ds = {}
        for prep in ("word5", "word5_plain"):
            ds[prep] = run_isolated(textwrap.dedent(speed_code) + textwrap.dedent(f"""
                sys.path.insert(0, {str(ROOT / 'bench')!r})
                from bench_dedup import {prep} as shingle
                from datasketch import MinHash, MinHashLSH
                lsh = MinHashLSH(threshold=0.7, num_perm=128)
                T0 = time.perf_counter(); C0 = time.process_time()
                for i, t in enumerate(texts):
                    m = MinHash(num_perm=128)
                    m.update_batch(shingle(t))
                    lsh.insert(str(i), m)
                RESULT['seconds'] = time.perf_counter() - T0
                RESULT['cpu'] = time.process_time() - C0
            """))
        o_mbs = ours.result["mb"] / ours.result["cpu"]
        d1 = ds["word5"].result["mb"] / ds["word5"].result["cpu"]
        d2 = ds["word5_plain"].result["mb"] / ds["word5_plain"].result["cpu"]
        docs = ours.result["docs"]
        print_table(f"Per core, {docs} generated traces ({ours.result['mb']:.1f} MB), CPU seconds (load avg {_load()})", [
            ("ours: NFKC tokenise + exact hash + MinHash + band keys",
             f"{o_mbs:.1f} MB/s, {docs / ours.result['cpu']:.0f} traces/s", f"{o_mbs / d2:.1f}x / {o_mbs / d1:.1f}x datasketch"),
            ("datasketch MinHash+LSH insert, lower().split() 5-grams",
             f"{d2:.2f} MB/s, {docs / ds['word5_plain'].result['cpu']:.0f} traces/s", "1.0x (first ratio)"),
            ("datasketch MinHash+LSH insert, our normalised 5-grams",
             f"{d1:.2f} MB/s, {docs / ds['word5'].result['cpu']:.0f} traces/s", "1.0x (second ratio)"),
        ])

        # 3. the full stage at scale, in a fresh process
        stage = run_isolated(f"""
            from dataengine.config import load_config_dict
            from dataengine.dedup.stage import run_dedup
            from dataengine.store import Workspace
            ws = Workspace.open({str(tmp / 'ws')!r})
            T0 = time.perf_counter()
            RESULT['counts'] = run_dedup(ws, load_config_dict({{}}), workers=2)
            RESULT['seconds'] = time.perf_counter() - T0
            ru, rc = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            RESULT['child_rss_mb'] = rc.ru_maxrss / 1024
            RESULT['cpu'] = ru.ru_utime + ru.ru_stime + rc.ru_utime + rc.ru_stime
        """)
        c = stage.result["counts"]
        per_trace = stage.seconds / info["traces"]
        found_exact = c["exact_duplicates"]
        found_near = c["near_duplicates"]
        print_table(f"Stage at scale: {info['traces']} traces, {info['mb']:.0f} MB ({info['mb'] / info['traces'] * 1000:.1f} KB mean), 2 workers", [
            ("generate input", f"{gen_s:.0f} s", "not counted"),
            ("run_dedup wall", f"{stage.seconds:.1f} s", f"{info['mb'] / stage.seconds:.1f} MB/s, load avg {_load()}"),
            ("run_dedup CPU (parent + workers)", f"{stage.result['cpu']:.1f} s",
             f"{info['mb'] / stage.result['cpu']:.1f} MB/s per core = {info['mb'] / stage.result['cpu'] / d1:.1f}x datasketch "
             f"(our normalisation, above); goal >= 10x"),
            ("phases (wall s)", " ".join(f"{k}={v}" for k, v in c["seconds"].items()), ""),
            ("extrapolated to 800k traces, wall as measured", f"{per_trace * 800_000 / 60:.1f} min", "goal < 10 min"),
            ("extrapolated to 800k traces, 2 idle cores (CPU/2)",
             f"{stage.result['cpu'] / info['traces'] * 800_000 / 2 / 60:.1f} min", "goal < 10 min"),
            ("peak RSS parent / largest worker", f"{stage.peak_rss_mb:.0f} / {stage.result['child_rss_mb']:.0f} MB", "goal < 8 GiB in all"),
            ("planted exact duplicates found", f"{found_exact} / {info['planted_exact']}", "upper-cased copies"),
            ("planted near duplicates found", f"{found_near} / {info['planted_near']}", "0.2-2% word edits"),
            ("candidate / verified pairs", f"{c['candidate_pairs']} / {c['verified_pairs']}", f"bands imply J={c['implied_threshold']}"),
        ])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
