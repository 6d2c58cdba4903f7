"""`dataengine ingest --kind sft`, `dataengine mix`, `dataengine export`: flags override the config."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dataengine.cli import cli


def test_cli_ingest_sft_mix_and_export(shared_data: Path, tmp_path: Path):
    import datasets

    runner = CliRunner()
    ws = str(tmp_path / "ws")
    outputs = {}
    for name, fmt in [("alpaca_en_demo_llamafactory.json", "alpaca"), ("sharegpt_zh_1K_medicalgpt.jsonl", "sharegpt"),
                      ("alpaca_zh_demo_llamafactory.json", "alpaca")]:
        r = runner.invoke(cli, ["--workspace", ws, "ingest", str(shared_data / "sft" / name), "--kind", "sft",
                                "--sft-format", fmt])
        assert r.exit_code == 0, r.output
        outputs[name] = r.output
    assert "quarantined 1 (no_assistant_turn=1)" in outputs["sharegpt_zh_1K_medicalgpt.jsonl"]
    assert "in=999 = taken 999" in outputs["alpaca_en_demo_llamafactory.json"]
    r = runner.invoke(cli, ["--workspace", ws, "ingest", str(shared_data / "traces" / "thinking_llms_interp" /
                                                             "r1distill_qwq_benchmark_traces.jsonl"),
                            "--map", "prompt=question", "--map", "completion=response", "--map", "model=thinking_model",
                            "--think-format", "prompt_opened", "--domain", "math"])
    assert r.exit_code == 0, r.output

    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text("mix:\n  reasoning: 600000\n  non_reasoning: 200000\n  shortfall: fail\n"
                   "export:\n  test_fraction: 0.0\n  formats: [datasets, parquet]\n")
    # the config's quotas cannot be met: fail, exit 1, with the shortfall named
    r = runner.invoke(cli, ["--workspace", ws, "mix", "--config", str(cfg)])
    assert r.exit_code == 1 and "reasoning/math" in r.output and "missing" in r.output
    # flags override the config
    r = runner.invoke(cli, ["--workspace", ws, "mix", "--config", str(cfg), "--reasoning", "200",
                            "--non-reasoning", "50", "--seed", "3", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["rows"] == 250 and out["rows_by_bucket"] == {"reasoning": 200, "non_reasoning": 50}
    assert out["seed"] == 3 and out["stages_run"] == {"filter": False, "verify": False, "dedup": False}
    r = runner.invoke(cli, ["--workspace", ws, "sql", "-f", "json", "--query", "mix_summary"])
    summary = json.loads(r.output)
    assert sum(x["rows"] for x in summary) == 250

    r = runner.invoke(cli, ["--workspace", ws, "export", "--config", str(cfg), "--out", str(tmp_path / "out"),
                            "--test-fraction", "0.2"])
    assert r.exit_code == 0, r.output
    dd = datasets.load_from_disk(str(tmp_path / "out" / "hf"))
    assert dd["train"].num_rows + dd["test"].num_rows == 250
    assert not (tmp_path / "out" / "jsonl").exists()  # formats from the config
    assert (tmp_path / "out" / "README.md").exists()


def test_example_mix_config_loads():
    from dataengine.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "mix.yaml")
    mix = cfg.section("mix")
    assert (mix.reasoning, mix.non_reasoning, mix.shortfall) == (600_000, 200_000, "fill")
    assert abs(sum(mix.reasoning_weights.values()) - 1.0) < 1e-9
