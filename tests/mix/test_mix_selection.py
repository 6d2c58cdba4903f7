"""The mix draws its reasoning traces from the select stage's selection, in the selection's order.

Real R1-Distill/QwQ GSM8K traces (several models per prompt); verdicts are written as rows so the
select policies have several verified traces per prompt to choose from.
"""

from __future__ import annotations

import pytest

from dataengine.config import load_config_dict
from dataengine.mix.assemble import run_mix
from dataengine.verify.select import run_select


def _verify_all_closed(pool) -> int:
    ids = [r[0] for r in pool.query(
        "select trace_id from traces where metadata->>'bucket' is null and think_closed and answer <> '' "
        "and domain = 'gsm8k' order by trace_id").fetchall()]
    pool.write_shard("verifications", [{"trace_id": t, "verifier": "math", "verdict": "correct"} for t in ids])
    return len(ids)


def _reasoning_members(pool, mix_id: str) -> set[str]:
    return {r[0] for r in pool.query("select trace_id from mix_latest where mix_id = $m and bucket = 'reasoning'",
                                     {"m": mix_id}).fetchall()}


def _selected(pool, name: str, rank0_only: bool = False) -> set[str]:
    extra = " and rank = 0" if rank0_only else ""
    return {r[0] for r in pool.query(f"select trace_id from selected_traces where selection = $s{extra}",  # noqa: S608
                                     {"s": name}).fetchall()}


def test_every_reasoning_row_of_the_mix_is_in_the_selection_and_policies_change_it(pool):
    assert _verify_all_closed(pool) > 1000
    cfg = load_config_dict({})
    before = run_mix(pool, cfg, reasoning=300, non_reasoning=5, seed=1, mix_id="no-select")
    assert before["selection"] is None

    chosen: dict[str, set[str]] = {}
    for policy in ("shortest", "most_distinct", "journey"):
        run_select(pool, cfg, k=1, policy=policy, selection=policy, seed=0)
        out = run_mix(pool, cfg, reasoning=300, non_reasoning=5, seed=1, mix_id=f"m-{policy}", selection=policy)
        assert out["selection"] == policy
        members = _reasoning_members(pool, out["mix_id"])
        assert members and members <= _selected(pool, policy)
        assert out["excluded"]["reasoning:not_selected"] > 0
        chosen[policy] = members
    assert chosen["shortest"] != chosen["most_distinct"] != chosen["journey"] != chosen["shortest"]
    # Without a selection name, the latest select run's selection (journey) is used.
    latest = run_mix(pool, cfg, reasoning=300, non_reasoning=5, seed=1, mix_id="latest")
    assert latest["selection"] == "journey" and _reasoning_members(pool, "latest") == chosen["journey"]
    # shortest with k=1 keeps the shortest verified trace of each prompt: so does the mix.
    longer = pool.query(
        "select count(*) from mix_latest m join traces t using (trace_id) join traces o on o.prompt_id = t.prompt_id "
        "join verifications v on v.trace_id = o.trace_id "
        "where m.mix_id = 'm-shortest' and m.bucket = 'reasoning' and length(o.completion) < length(t.completion)"
    ).fetchone()[0]
    assert longer == 0


def test_selection_rank_orders_traces_of_a_prompt(pool):
    _verify_all_closed(pool)
    cfg = load_config_dict({})
    run_select(pool, cfg, k=4, policy="shortest", selection="s4")
    out = run_mix(pool, cfg, reasoning=300, non_reasoning=5, seed=3, selection="s4", max_per_prompt=1)
    assert _reasoning_members(pool, out["mix_id"]) <= _selected(pool, "s4", rank0_only=True)
    off = run_mix(pool, cfg, reasoning=300, non_reasoning=5, seed=3, selection="none", mix_id="off")
    assert off["selection"] is None and "reasoning:not_selected" not in off["excluded"]


def test_unknown_selection_is_an_error(pool):
    with pytest.raises(ValueError, match="no selection 'nope'"):
        run_mix(pool, load_config_dict({}), reasoning=10, non_reasoning=1, selection="nope")


def test_report_funnel_and_card_name_the_selection_and_count_what_reached_the_export(pool, tmp_path):
    from dataengine.mix.export import run_export
    from dataengine.report.data import collect

    _verify_all_closed(pool)
    cfg = load_config_dict({})
    run_select(pool, cfg, k=2, policy="shortest", selection="short2")
    run_select(pool, cfg, k=1, policy="most_distinct", selection="other")  # newer, but not the mix's
    out = run_mix(pool, cfg, reasoning=200, non_reasoning=20, seed=0, selection="short2", max_per_prompt=2)
    data = collect(pool, summary_only=True)
    assert data["selection_used"] == "short2"
    steps = {b: {s["step"]: s["n"] for s in f} for b, f in data["funnel_by_bucket"].items()}
    reasoning, plain = steps["reasoning"], steps["non_reasoning"]
    assert reasoning["selected (rejection sampling)"] == len(_selected(pool, "short2"))
    assert reasoning["in the mix"] == out["rows_by_bucket"]["reasoning"] <= reasoning["selected (rejection sampling)"]
    # non-reasoning rows are neither verified nor selected: those steps pass them through
    assert plain["selected (rejection sampling)"] == plain["verified correct"] == plain["passed filters"]
    assert plain["in the mix"] == 20
    total = {s["step"]: s["n"] for s in data["funnel"]}
    assert total["in the mix"] == reasoning["in the mix"] + plain["in the mix"]
    card = (tmp_path / "out")
    run_export(pool, cfg, card)
    text = (card / "README.md").read_text()
    assert "selection `short2`" in text
