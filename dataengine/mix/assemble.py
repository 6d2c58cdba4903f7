"""Mix assembly: fill the reasoning and non-reasoning quotas from the qualified pool, by domain weight.

Steps (all over the store, in DuckDB; only narrow id columns reach Python):

1. `sql/mix/candidates.sql` judges every trace: bucket, domain, the first reason it does not
   qualify (think block, finish reason, length, filters, verdicts, dedup, contamination, k per
   prompt) and an order key md5(seed:trace_id).
2. `plan_bucket` turns the quota, the weights and the qualified counts per domain into a plan:
   how many rows each domain gives, and the shortfall policy's answer where a pool is too small.
3. `sql/mix/select.sql` takes the first rows of each domain in order-key order; the result is
   written to `mix_members` with the reason each row was chosen (`quota`, `fill`, `upsample`).

The same seed, pool and spec give byte-identical ids in the same order.

>>> plan_bucket("reasoning", 10, {"math": 1, "code": 1}, {"math": 8, "code": 2}, "fill", 2)[0]["math"]["take"]
8
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

import pyarrow as pa

from dataengine import sqlfiles
from dataengine.config import PipelineConfig, apply_overrides
from dataengine.mix.config import BUCKETS, MixConfig
from dataengine.store import Workspace


class MixShortfall(RuntimeError):
    """The pool cannot fill a quota and the policy is `fail`; `report` says where and by how much."""

    def __init__(self, message: str, report: list[dict[str, Any]]):
        super().__init__(message)
        self.report = report


def _largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer shares of `total` proportional to `weights` that sum exactly to `total`."""
    wsum = sum(w for w in weights.values() if w > 0)
    if total <= 0 or wsum <= 0:
        return {d: 0 for d in weights}
    exact = {d: total * w / wsum for d, w in weights.items() if w > 0}
    out = {d: int(x) for d, x in exact.items()}
    left = total - sum(out.values())
    # Ties broken by name so the plan never depends on dict order.
    for d in sorted(exact, key=lambda d: (-(exact[d] - out[d]), d))[:left]:
        out[d] += 1
    return {d: out.get(d, 0) for d in weights}


def plan_bucket(
    bucket: str,
    quota: int,
    weights: dict[str, float],
    available: dict[str, int],
    policy: str,
    upsample_cap: int,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Per-domain plan for one bucket, and its shortfall rows (domains that miss their target).

    plan[domain] = {target, take, copies_base, copies_extra}: `target` is the weighted share of the
    quota, `take` the distinct rows used, `copies_*` the repeat counts under `upsample`.
    Empty `weights` means proportional to the qualified pool. `fill` hands each missing row to the
    weighted domains with rows to spare, in proportion to their weights (all pool domains when
    weights are empty); `upsample` repeats a short domain's rows up to `upsample_cap` times each.
    """
    if not weights:
        weights = {d: float(n) for d, n in available.items() if n > 0}
    targets = _largest_remainder(quota, weights)
    plan = {d: {"target": t, "take": min(t, available.get(d, 0)), "copies_base": 1, "copies_extra": 0}
            for d, t in targets.items()}
    shortfall = []
    for d, p in sorted(plan.items()):
        missing = p["target"] - p["take"]
        if missing > 0:
            shortfall.append({"bucket": bucket, "domain": d, "target": p["target"],
                              "available": available.get(d, 0), "missing": missing})
    if policy == "fill":
        missing = sum(s["missing"] for s in shortfall)
        while missing > 0:
            spare = {d: w for d, w in weights.items()
                     if w > 0 and available.get(d, 0) > plan[d]["take"]}
            if not spare:
                break
            shares = _largest_remainder(missing, spare)
            if not any(shares.values()):  # fewer missing rows than domains: give one each, by weight
                for d in sorted(spare, key=lambda d: (-spare[d], d))[:missing]:
                    shares[d] = 1
            for d, n in shares.items():
                extra = min(n, available[d] - plan[d]["take"])
                plan[d]["take"] += extra
                missing -= extra
        for s in shortfall:
            s["filled_from_other_domains"] = True
        if shortfall:
            shortfall.append({"bucket": bucket, "domain": "*", "target": quota,
                              "available": sum(available.values()), "missing": missing,
                              "filled_from_other_domains": True})
    elif policy == "upsample":
        for s in shortfall:
            d, avail, target = s["domain"], s["available"], s["target"]
            if avail == 0:
                continue
            rows = min(target, avail * upsample_cap)
            plan[d]["copies_base"] = rows // avail
            plan[d]["copies_extra"] = rows % avail
            s["upsampled_rows"] = rows - avail
            s["missing"] = target - rows
    # A bucket can be short with no short domain: an empty pool (no domain at all to weigh) or
    # weights naming no pool domain. The bucket row ("*") says so, so `fail` fails on it too.
    rows = sum(p["take"] * p["copies_base"] + p["copies_extra"] for p in plan.values())
    if rows < quota and not any(s["domain"] == "*" for s in shortfall):
        shortfall.append({"bucket": bucket, "domain": "*", "target": quota,
                          "available": sum(available.values()), "missing": quota - rows})
    return plan, shortfall


def _stage_ran(con: Any, table: str) -> bool:
    return con.execute(f"select exists (select 1 from {table})").fetchall()[0][0]  # noqa: S608 - fixed table names


def _resolve_selection(con: Any, name: str | None) -> str | None:
    """The selection the mix draws reasoning traces from: `name`, else the latest select run's one.

    'none' turns selections off. A named selection that no select run wrote is an error, not an
    empty reasoning bucket.
    """
    if name == "none":
        return None
    if name is not None:
        if not con.execute("select exists (select 1 from selected_traces where selection = $s)", {"s": name}).fetchall()[0][0]:
            known = [r[0] for r in con.execute("select distinct selection from selected_traces order by 1").fetchall()]
            raise ValueError(f"mix.selection: no selection {name!r} in this workspace (known: {', '.join(known) or 'none; run `dataengine select`'})")
        return name
    row = con.execute("select selection from selections order by written_at desc, run_id desc limit 1").fetchall()
    return row[0][0] if row else None


def default_mix_id(cfg: MixConfig) -> str:
    from dataengine.records import content_hash

    spec = {k: v for k, v in asdict(cfg).items() if k != "mix_id"}
    return "mix-" + content_hash(json.dumps(spec, sort_keys=True))[:10]


def run_mix(ws: Workspace, cfg: PipelineConfig, **overrides: Any) -> dict[str, Any]:
    """Assemble the mix described by `cfg.section("mix")` (with `overrides` applied); returns figures.

    Writes `mix_members` rows (mix_id, trace_id, bucket, domain, reason, prompt_id, copies,
    position) and a `runs` row whose counts hold the shortfall report. Raises `MixShortfall` when
    the policy is `fail` and a domain cannot be filled (the run is recorded as failed).

    >>> out = run_mix(ws, load_config("pipeline.yaml"), reasoning=200, non_reasoning=50, seed=3)  # doctest: +SKIP
    >>> out["rows"], out["shortfall"]                                                          # doctest: +SKIP
    (250, [])
    """
    mcfg: MixConfig = apply_overrides(cfg.section("mix"), overrides)
    mcfg.validate()
    mix_id = mcfg.mix_id or default_mix_id(mcfg)
    t0 = time.perf_counter()
    con = ws.connect()
    try:
        con.execute("set enable_progress_bar = false")  # it writes to stdout, which is the CLI's output
        selection = _resolve_selection(con, mcfg.selection)
        # The resolved selection is part of the run's config: the card and report name it from there.
        run = ws.start_run("mix", {**asdict(mcfg), "mix_id": mix_id, "selection_used": selection})
        stages = {"filter": _stage_ran(con, "filter_results"), "verify": _stage_ran(con, "verifications"),
                  "dedup": _stage_ran(con, "dedup")}
        params = {
            "selection": selection or "", "select_active": selection is not None,
            "seed": mcfg.seed, "min_chars": mcfg.min_chars, "max_chars": mcfg.max_chars,
            "max_completion_tokens": mcfg.max_completion_tokens, "require_think_closed": mcfg.require_think_closed,
            "finish_reasons": mcfg.finish_reasons, "filters": mcfg.filters, "filters_active": stages["filter"],
            "require_filtered": mcfg.require_filtered, "accepted_verdicts": mcfg.accepted_verdicts,
            "verifiers": mcfg.verifiers, "verify_active": stages["verify"], "require_verified": mcfg.require_verified,
            "verify_all": mcfg.verify_policy == "all",
            "dedup_representatives_only": mcfg.dedup_representatives_only and stages["dedup"],
            "exclude_contaminated": mcfg.exclude_contaminated, "max_per_prompt": mcfg.max_per_prompt,
        }
        sql = sqlfiles.load("mix/candidates")
        if mcfg.max_chars is None and mcfg.min_chars <= 1:
            # Only emptiness is checked: the answer says it without reading the completions.
            assert sql.count("/*N_CHARS*/") == 1 and sql.count("/*END*/") == 1, "candidates.sql length markers"
            head, rest = sql.split("/*N_CHARS*/", 1)
            sql = head + "length(t.answer)" + rest.split("/*END*/", 1)[1]
        con.execute("create temp table cand as " + sql, params)
        pool_rows = con.execute(
            "select bucket, domain, count(*) filter (where excluded is null), count(*) from cand group by all"
        ).fetchall()
        excluded = dict(con.execute(
            "select bucket || ':' || excluded, count(*) from cand where excluded is not null group by all order by all"
        ).fetchall())
        available: dict[str, dict[str, int]] = {b: {} for b in BUCKETS}
        pool_total: dict[str, int] = {b: 0 for b in BUCKETS}
        for bucket, domain, n_ok, n_all in pool_rows:
            available.setdefault(bucket, {})[domain] = n_ok
            pool_total[bucket] = pool_total.get(bucket, 0) + n_all

        plan_rows, shortfall = [], []
        quotas = {"reasoning": mcfg.reasoning, "non_reasoning": mcfg.non_reasoning}
        weights = {"reasoning": mcfg.reasoning_weights, "non_reasoning": mcfg.non_reasoning_weights}
        for bucket in BUCKETS:
            plan, short = plan_bucket(bucket, quotas[bucket], weights[bucket], available.get(bucket, {}),
                                      mcfg.shortfall, mcfg.upsample_cap)
            shortfall += short
            plan_rows += [{"bucket": bucket, "domain": d, **p} for d, p in plan.items()]
        if mcfg.shortfall == "fail" and shortfall:
            lines = "; ".join(f"{s['bucket']}/{s['domain']}: {s['missing']} missing "
                              f"(target {s['target']}, {s['available']} qualified)" for s in shortfall)
            run.finish({"in": sum(pool_total.values()), "out": 0, "shortfall": shortfall}, status="failed")  # type: ignore[dict-item]
            raise MixShortfall(f"mix {mix_id}: the pool cannot fill the quotas (shortfall: fail): {lines}", shortfall)

        plan_tbl = pa.Table.from_pylist(plan_rows, schema=pa.schema([
            ("bucket", pa.string()), ("domain", pa.string()), ("target", pa.int64()), ("take", pa.int64()),
            ("copies_base", pa.int64()), ("copies_extra", pa.int64())]))
        con.register("plan", plan_tbl)
        chosen = con.sql(sqlfiles.load("mix/select")).to_arrow_table()
    finally:
        con.close()

    n = chosen.num_rows
    members = pa.table({
        "mix_id": pa.array([mix_id] * n, pa.string()),
        "trace_id": chosen["trace_id"], "bucket": chosen["bucket"], "domain": chosen["domain"],
        "reason": chosen["reason"], "run_id": pa.array([run.run_id] * n, pa.string()),
        "prompt_id": chosen["prompt_id"], "copies": chosen["copies"],
        "position": pa.array(range(n), pa.int64()),
    })
    for i, start in enumerate(range(0, max(n, 1), 500_000)):
        ws.write_shard("mix_members", members.slice(start, 500_000), name=f"{run.run_id}-{i:04d}")

    copies = chosen["copies"].to_pylist()
    by_domain: dict[str, dict[str, int]] = {}
    for b, d, c in zip(chosen["bucket"].to_pylist(), chosen["domain"].to_pylist(), copies):
        by_domain.setdefault(b, {}).setdefault(d, 0)
        by_domain[b][d] += c
    rows_by_bucket = {b: sum(v.values()) for b, v in by_domain.items()}
    result = {
        "mix_id": mix_id, "run_id": run.run_id, "traces": n, "rows": sum(copies),
        "rows_by_bucket": rows_by_bucket, "rows_by_domain": by_domain,
        "quotas": quotas, "pool": pool_total, "qualified": available, "excluded": excluded,
        "unfilled": {b: max(quotas[b] - rows_by_bucket.get(b, 0), 0) for b in BUCKETS},
        "stages_run": stages, "selection": selection, "shortfall": shortfall, "policy": mcfg.shortfall, "seed": mcfg.seed,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    run.finish({"in": sum(pool_total.values()), "out": n, "quarantined": 0, "rows": sum(copies),
                **{f"rows:{b}": r for b, r in rows_by_bucket.items()},
                **{f"excluded:{k}": v for k, v in excluded.items()},
                **{f"unfilled:{b}": max(quotas[b] - rows_by_bucket.get(b, 0), 0) for b in BUCKETS}})
    (ws.artifacts / "mix").mkdir(exist_ok=True)
    (ws.artifacts / "mix" / f"{mix_id}.json").write_text(json.dumps(result, indent=2, default=str))
    return result
