"""`dataengine train sft|grpo --config FILE` on tiny local models; recipes validate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dataengine.cli import cli
from trainers.runtime import read_metrics

ROOT = Path(__file__).resolve().parents[2]


def test_train_sft_from_config_file_then_resume(tiny_qwen, messages_dataset, tmp_path):
    cfg = tmp_path / "sft.yaml"
    out = tmp_path / "run"
    cfg.write_text(yaml.safe_dump({"train_sft": {"model": str(tiny_qwen), "dataset": str(messages_dataset),
                                           "output_dir": str(out), "max_length": 192, "batch_size": 4,
                                           "max_steps": 2, "save_every": 1}}))
    r = CliRunner().invoke(cli, ["train", "sft", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert (out / "final" / "config.yaml").exists() and (out / "checkpoint-1" / "state.pt").exists()
    assert [row["step"] for row in read_metrics(out) if "loss" in row] == [1, 2]
    # a larger budget on the command line continues from the newest checkpoint
    r = CliRunner().invoke(cli, ["train", "sft", "--config", str(cfg), "--max-steps", "3"])
    assert r.exit_code == 0, r.output
    assert [row["step"] for row in read_metrics(out) if "loss" in row] == [1, 2, 3]


def test_train_grpo_dry_run_and_config_errors(tmp_path):
    r = CliRunner().invoke(cli, ["train", "grpo", "--config", str(ROOT / "examples/train/r1_stage2_grpo.yaml"), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "language_consistency: 1.0" in r.output and "torchrun" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"train_grpo": {"model": "m", "dataset": "d", "max_steps": 5, "loss_type": "bnpo"}}))
    r = CliRunner().invoke(cli, ["train", "grpo", "--config", str(bad)])
    assert r.exit_code != 0 and "train_grpo: loss_type: expected one of grpo, dapo, dr_grpo" in r.output


@pytest.mark.parametrize("recipe", sorted((ROOT / "examples" / "train").glob("*.yaml")), ids=lambda p: p.name)
def test_recipes_validate(recipe):
    from dataengine.config import load_config

    cfg = load_config(recipe)
    (name,) = cfg.sections
    assert name in ("train_sft", "train_grpo") and cfg.section(name).model
