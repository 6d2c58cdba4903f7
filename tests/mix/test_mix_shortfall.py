"""`mix --shortfall fail` exits 1 whenever a bucket or one of its domains is short, and says which."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dataengine.cli import cli
from dataengine.mix.assemble import plan_bucket


def test_empty_reasoning_pool_fails_with_the_bucket_listed(shared_data: Path, tmp_path: Path):
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    r = runner.invoke(cli, ["--workspace", ws, "ingest", str(shared_data / "sft" / "alpaca_en_demo_llamafactory.json"),
                            "--kind", "sft"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--workspace", ws, "mix", "--reasoning", "450", "--non-reasoning", "10",
                            "--shortfall", "fail", "--json"])
    assert r.exit_code == 1, r.output
    out = json.loads(r.output)
    assert out["shortfall"] == [{"bucket": "reasoning", "domain": "*", "target": 450, "available": 0, "missing": 450}]
    r = runner.invoke(cli, ["--workspace", ws, "mix", "--reasoning", "450", "--non-reasoning", "10", "--shortfall", "fail"])
    assert r.exit_code == 1 and "reasoning/*: 450 missing" in r.output
    # a non-reasoning category named in the weights but absent from the pool is short too
    r = runner.invoke(cli, ["--workspace", ws, "mix", "--reasoning", "0", "--non-reasoning", "10", "--shortfall", "fail",
                            "--non-reasoning-weight", "medical=1", "--non-reasoning-weight", "writing=1", "--json"])
    assert r.exit_code == 1, r.output
    short = {(s["bucket"], s["domain"]): s["missing"] for s in json.loads(r.output)["shortfall"]}
    assert short == {("non_reasoning", "medical"): 5, ("non_reasoning", "*"): 5}
    # fill keeps going and still reports what it could not fill
    r = runner.invoke(cli, ["--workspace", ws, "mix", "--reasoning", "450", "--non-reasoning", "10", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["unfilled"]["reasoning"] == 450
    assert {(s["bucket"], s["domain"], s["missing"]) for s in out["shortfall"]} == {("reasoning", "*", 450)}


def test_plan_bucket_reports_a_short_bucket_under_every_policy():
    for policy in ("fail", "fill", "upsample"):
        _plan, short = plan_bucket("reasoning", 100, {}, {}, policy, 2)
        assert [s["missing"] for s in short if s["domain"] == "*"] == [100], policy
        _plan, short = plan_bucket("reasoning", 100, {}, {"math": 30, "code": 10}, policy, 2)
        assert short and sum(s["missing"] for s in short if s["domain"] == "*") > 0, policy
    # an exactly filled bucket has no shortfall
    assert plan_bucket("reasoning", 40, {}, {"math": 30, "code": 10}, "fail", 2)[1] == []
