"""The report shows the exported mix (not merely the newest one), or the one named by --mix-id;
its funnel's "in the mix" equals the exported row count (real SFT sets and R1/QwQ traces)."""

from __future__ import annotations

from click.testing import CliRunner

from dataengine.cli import cli
from dataengine.config import load_config_dict
from dataengine.mix.assemble import run_mix
from dataengine.mix.export import run_export
from dataengine.report.data import collect


def test_report_follows_the_exported_mix_unless_told(pool, tmp_path):
    cfg = load_config_dict({})
    run_mix(pool, cfg, reasoning=40, non_reasoning=10, mix_id="exported", seed=1)
    out = run_export(pool, cfg, tmp_path / "out", mix_id="exported", formats=["parquet"])
    run_mix(pool, cfg, reasoning=70, non_reasoning=20, mix_id="newer", seed=2)  # mixed later, never exported

    data = collect(pool, summary_only=True)
    in_mix = next(f["n"] for f in data["funnel"] if f["step"] == "in the mix")
    assert data["mix_id"] == "exported" and in_mix == out["total_rows"] == 50
    assert sum(r["n"] for r in data["mix"]) == 50 and data["mix_quota"]["reasoning"] == 40

    newer = collect(pool, summary_only=True, mix_id="newer")
    assert next(f["n"] for f in newer["funnel"] if f["step"] == "in the mix") == 90
    assert newer["mix_quota"]["reasoning"] == 70

    r = CliRunner().invoke(cli, ["--workspace", str(pool.root), "report", "--mix-id", "newer", "--out",
                                 str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert '"mix_id":"newer"' in (tmp_path / "r.html").read_text()
    r = CliRunner().invoke(cli, ["--workspace", str(pool.root), "report", "--mix-id", "nope"])
    assert r.exit_code == 1 and "mix_id 'nope': no mix run of that id" in r.output
