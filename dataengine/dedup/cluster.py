"""Exact groups, LSH candidates, verification and connected components, in DuckDB SQL.

Numpy computes signatures and band keys; everything relational (grouping by hash, bucketing
by band key, joining pairs, propagating component labels, choosing representatives) is SQL from
`sql/dedup/`, run on a private in-memory DuckDB connection holding Arrow tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from dataengine import sqlfiles
from dataengine.dedup.minhash import EMPTY, band_keys, estimate_jaccard, exact_jaccard

ExactSets = Callable[[np.ndarray], dict[int, np.ndarray]]


@dataclass
class NearDupResult:
    labels: np.ndarray  # int64 [n]: component root index, or the doc's own index
    candidate_pairs: int
    verified_pairs: int
    # The pairs judged near-duplicate (after verification); clusters are their components.
    a: np.ndarray | None = None
    b: np.ndarray | None = None


def pick_representatives(
    con: duckdb.DuckDBPyConnection,
    grp: np.ndarray,
    status: np.ndarray,
    n_chars: np.ndarray,
    tie: np.ndarray,
    preference: list[str],
) -> np.ndarray:
    """rep[i]: the index of the representative of i's group (sql/dedup/pick.sql)."""
    n = len(grp)
    con.register(
        "pick_members",
        pa.table({"idx": np.arange(n, dtype=np.int64), "grp": grp, "status": status, "n_chars": n_chars, "tie": tie}),
    )
    keys = (list(preference) + ["seeded"] * 4)[:4]
    tbl = con.sql(sqlfiles.load("dedup/pick"), params={f"k{i + 1}": k for i, k in enumerate(keys)}).to_arrow_table()
    con.unregister("pick_members")
    rep = np.empty(n, dtype=np.int64)
    rep[tbl.column("idx").to_numpy()] = tbl.column("rep").to_numpy()
    return rep


def connected_components(con: duckdb.DuckDBPyConnection, a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """labels[i]: the smallest index in i's component (i itself when it has no edge)."""
    labels = np.arange(n, dtype=np.int64)
    if len(a) == 0:
        return labels
    con.register("cc_edges_arrow", pa.table({"a": a.astype(np.int64), "b": b.astype(np.int64)}))
    con.execute("create or replace temp table cc_edges as select * from cc_edges_arrow")
    con.unregister("cc_edges_arrow")
    con.execute(sqlfiles.load("dedup/cc_init"))
    for _ in range(64):
        con.execute(sqlfiles.load("dedup/cc_step"))
        changed = con.execute(sqlfiles.load("dedup/cc_changed")).fetchone()[0]
        con.execute("create or replace temp table cc_labels as select * from cc_next")
        if changed == 0:
            break
    tbl = con.sql("select node, label from cc_labels").to_arrow_table()
    labels[tbl.column("node").to_numpy()] = tbl.column("label").to_numpy()
    con.execute("drop table if exists cc_next")
    con.execute("drop table if exists cc_labels")
    con.execute("drop table if exists cc_edges")
    return labels


def near_duplicates(
    con: duckdb.DuckDBPyConnection,
    sig: np.ndarray,
    grp: np.ndarray,
    active: np.ndarray,
    *,
    bands: int,
    rows: int,
    threshold: float,
    verify: str,
    max_bucket: int,
    exact_sets: ExactSets | None = None,
) -> NearDupResult:
    """Cluster the `active` documents whose signatures are near-duplicates within their `grp`."""
    n = len(sig)
    idx = np.flatnonzero(active & (sig[:, 0] != EMPTY))
    if len(idx) < 2:
        return NearDupResult(np.arange(n, dtype=np.int64), 0, 0)
    keys = band_keys(sig[idx], bands, rows)  # [m, bands]
    m = len(idx)
    con.register(
        "lsh_bands_arrow",
        pa.table(
            {
                "idx": np.repeat(idx, bands),
                "grp": np.repeat(grp[idx], bands),
                "band": np.tile(np.arange(bands, dtype=np.int16), m),
                "key": keys.ravel(),
            }
        ),
    )
    con.execute("create or replace temp table lsh_bands as select * from lsh_bands_arrow")
    con.unregister("lsh_bands_arrow")
    del keys
    pairs = con.sql(sqlfiles.load("dedup/candidates"), params={"max_bucket": max_bucket}).to_arrow_table()
    con.execute("drop table lsh_bands")
    a = pairs.column("a").to_numpy()
    b = pairs.column("b").to_numpy()
    n_cand = len(a)
    if verify == "signature":
        keep = estimate_jaccard(sig, a, b) >= threshold
        a, b = a[keep], b[keep]
    elif verify == "exact":
        if exact_sets is None:
            raise ValueError("verify=exact needs the texts: no exact_sets reader given")
        sets = exact_sets(np.unique(np.concatenate([a, b])))
        keep = np.fromiter(
            (exact_jaccard(sets[x], sets[y]) >= threshold for x, y in zip(a.tolist(), b.tolist(), strict=True)),
            dtype=bool,
            count=len(a),
        )
        a, b = a[keep], b[keep]
    return NearDupResult(connected_components(con, a, b, n), n_cand, len(a), a, b)
