"""Mix assembly over a real pool: quotas per domain, determinism, shortfall policies, qualification."""

from __future__ import annotations

import pytest

from dataengine.config import load_config_dict
from dataengine.mix.assemble import MixShortfall, plan_bucket, run_mix


def _members(ws, run_id: str) -> list[tuple]:
    return ws.query("select trace_id, bucket, domain, reason, copies, position from mix_members_history "
                    "where run_id = $r order by position", {"r": run_id}).fetchall()


def test_quotas_hold_per_domain(pool):
    cfg = load_config_dict({"mix": {
        "reasoning": 400, "non_reasoning": 200,
        "reasoning_weights": {"gsm8k": 3, "math500": 1},
        "non_reasoning_weights": {"writing": 2, "factual_qa": 1, "self_cognition": 0.5, "medical": 1.5},
    }})
    out = run_mix(pool, cfg, seed=1)
    assert out["rows_by_domain"]["reasoning"] == {"gsm8k": 300, "math500": 100}
    assert out["rows_by_domain"]["non_reasoning"] == {"writing": 80, "factual_qa": 40, "self_cognition": 20, "medical": 60}
    assert out["shortfall"] == [] and out["unfilled"] == {"reasoning": 0, "non_reasoning": 0}
    got = dict(pool.query("select bucket || '/' || domain, count(*) from mix_latest where mix_id = $m group by all",
                          {"m": out["mix_id"]}).fetchall())
    assert got == {"reasoning/gsm8k": 300, "reasoning/math500": 100, "non_reasoning/writing": 80,
                   "non_reasoning/factual_qa": 40, "non_reasoning/self_cognition": 20, "non_reasoning/medical": 60}
    # every chosen reasoning trace has a closed think block and an answer; the bucket marker holds
    bad = pool.query("select count(*) from mix_latest m join traces t using (trace_id) where m.mix_id = $m and "
                     "((m.bucket = 'reasoning' and (not t.think_closed or t.answer = '')) or "
                     "(m.bucket = 'non_reasoning') <> (t.metadata->>'bucket' = 'non_reasoning'))",
                     {"m": out["mix_id"]}).fetchone()[0]
    assert bad == 0


def test_same_seed_gives_byte_identical_ids_and_another_seed_does_not(pool):
    cfg = load_config_dict({})
    a = run_mix(pool, cfg, reasoning=300, non_reasoning=100, seed=7)
    b = run_mix(pool, cfg, reasoning=300, non_reasoning=100, seed=7)
    c = run_mix(pool, cfg, reasoning=300, non_reasoning=100, seed=8)
    ids_a, ids_b, ids_c = (_members(pool, r["run_id"]) for r in (a, b, c))
    assert a["mix_id"] == b["mix_id"] != c["mix_id"]
    assert "\n".join(map(repr, ids_a)).encode() == "\n".join(map(repr, ids_b)).encode()
    assert len(ids_a) == 400 and {x[0] for x in ids_a} != {x[0] for x in ids_c}
    # the rerun replaced the selection: mix_latest shows one run's rows only
    assert pool.query("select count(*), count(distinct run_id) from mix_latest where mix_id = $m",
                      {"m": a["mix_id"]}).fetchone() == (400, 1)


def test_at_most_k_traces_per_prompt(pool):
    out = run_mix(pool, load_config_dict({}), reasoning=2000, non_reasoning=0, max_per_prompt=2, shortfall="fill")
    worst = pool.query("select max(n) from (select prompt_id, count(*) n from mix_latest where mix_id = $m group by 1)",
                       {"m": out["mix_id"]}).fetchone()[0]
    assert worst == 2
    assert out["excluded"]["reasoning:over_max_per_prompt"] > 0


def test_shortfall_fail_names_domain_and_missing_rows(pool):
    cfg = load_config_dict({"mix": {"reasoning": 1000, "non_reasoning": 0, "shortfall": "fail",
                                    "reasoning_weights": {"gsm8k": 1, "aime": 1}}})
    with pytest.raises(MixShortfall) as e:
        run_mix(pool, cfg)
    short = {s["domain"]: s for s in e.value.report}
    assert short["aime"]["target"] == 500 and short["aime"]["missing"] == 500 - short["aime"]["available"]
    assert "reasoning/aime" in str(e.value)
    status = pool.query("select status from runs where stage = 'mix' order by started_at desc limit 1").fetchone()[0]
    assert status == "failed"


def test_shortfall_fill_takes_missing_rows_from_other_domains(pool):
    cfg = load_config_dict({"mix": {"reasoning": 600, "non_reasoning": 0, "shortfall": "fill",
                                    "reasoning_weights": {"gsm8k": 1, "math500": 1}}})
    out = run_mix(pool, cfg)
    by = out["rows_by_domain"]["reasoning"]
    math500 = out["qualified"]["reasoning"]["math500"]
    assert math500 < 300 and by["math500"] == math500 and by["gsm8k"] == 600 - math500
    assert sum(by.values()) == 600 and out["unfilled"]["reasoning"] == 0
    reasons = dict(pool.query("select reason, count(*) from mix_latest where mix_id = $m group by 1",
                              {"m": out["mix_id"]}).fetchall())
    assert reasons == {"quota": 300 + math500, "fill": 300 - math500}
    assert [s["domain"] for s in out["shortfall"]] == ["math500", "*"]


def test_shortfall_upsample_repeats_rows_up_to_the_cap(pool):
    cfg = load_config_dict({"mix": {"reasoning": 1000, "non_reasoning": 0, "shortfall": "upsample", "upsample_cap": 2,
                                    "reasoning_weights": {"gsm8k": 1, "math500": 1}}})
    out = run_mix(pool, cfg)
    avail = out["qualified"]["reasoning"]["math500"]
    assert avail * 2 < 500
    assert out["rows_by_domain"]["reasoning"] == {"gsm8k": 500, "math500": avail * 2}
    s = next(x for x in out["shortfall"] if x["domain"] == "math500")
    assert s["upsampled_rows"] == avail and s["missing"] == 500 - 2 * avail
    copies = pool.query("select max(copies), count(*) filter (where reason = 'upsample') from mix_latest "
                        "where mix_id = $m and domain = 'math500'", {"m": out["mix_id"]}).fetchone()
    assert copies == (2, avail)


def test_filters_verdicts_and_dedup_qualify_traces_once_their_stage_ran(pool):
    cfg = load_config_dict({})
    before = run_mix(pool, cfg, reasoning=100, non_reasoning=10, seed=2)
    assert before["stages_run"] == {"filter": False, "verify": False, "dedup": False}
    ids = [r[0] for r in pool.query("select trace_id from traces where metadata->>'bucket' is null and think_closed "
                                    "and answer <> '' order by trace_id limit 40").fetchall()]
    fr = [{"trace_id": t, "filter": "lang_mix", "passed": i % 4 != 0, "reason": "ok" if i % 4 else "lang_mix_above_max"}
          for i, t in enumerate(ids)]
    pool.write_shard("filter_results", fr)
    ver = [{"trace_id": t, "verifier": "math", "verdict": "incorrect" if i % 5 == 1 else "correct"}
           for i, t in enumerate(ids)]
    pool.write_shard("verifications", ver)
    dd = [{"trace_id": t, "prompt_id": "p", "is_representative": i != 2,
           "contamination": '{"math500": 1}' if i == 3 else '{"gsm8k": 0}'} for i, t in enumerate(ids)]
    pool.write_shard("dedup", dd)
    out = run_mix(pool, cfg, reasoning=100, non_reasoning=10, seed=2, shortfall="fill")
    assert out["stages_run"] == {"filter": True, "verify": True, "dedup": True}
    chosen = {r[0] for r in pool.query("select trace_id from mix_latest where mix_id = $m and bucket = 'reasoning'",
                                       {"m": out["mix_id"]}).fetchall()}
    expect = {t for i, t in enumerate(ids) if i % 4 != 0 and i % 5 != 1 and i not in (2, 3)}
    # only traces that passed every stage remain, one per prompt (max_per_prompt = 1)
    prompts = {pool.query("select prompt_id from traces where trace_id = $t", {"t": t}).fetchone()[0] for t in expect}
    assert chosen <= expect and len(chosen) == len(prompts)
    ex = out["excluded"]
    assert ex["reasoning:filter_failed"] == 10 and ex["reasoning:unfiltered"] > 1000
    assert ex["reasoning:verify_rejected"] >= 1
    assert out["unfilled"]["reasoning"] > 0  # 40 scored traces cannot fill 100
    # non-reasoning rows are not subject to filters or verdicts
    assert out["rows_by_bucket"]["non_reasoning"] == 10


def test_length_bounds_exclude_long_completions(pool):
    out = run_mix(pool, load_config_dict({}), reasoning=50, non_reasoning=50, max_chars=600)
    longest = pool.query("select max(length(t.completion)) from mix_latest m join traces t using (trace_id) "
                         "where m.mix_id = $m", {"m": out["mix_id"]}).fetchone()[0]
    assert longest <= 600 and out["excluded"]["reasoning:too_long"] > 0


def test_plan_bucket_proportional_and_fill_arithmetic():
    plan, short = plan_bucket("r", 10, {}, {"a": 30, "b": 10}, "fill", 2)
    assert {d: p["take"] for d, p in plan.items()} == {"a": 8, "b": 2} and short == []
    plan, short = plan_bucket("r", 9, {"a": 1, "b": 1, "c": 1}, {"a": 100, "b": 1, "c": 100}, "fill", 2)
    assert sum(p["take"] for p in plan.values()) == 9 and plan["b"]["take"] == 1
    assert short[0]["domain"] == "b" and short[0]["missing"] == 2
    plan, short = plan_bucket("r", 10, {"a": 1}, {"a": 3}, "upsample", 3)
    assert (plan["a"]["copies_base"], plan["a"]["copies_extra"], short[0]["missing"]) == (3, 0, 1)
