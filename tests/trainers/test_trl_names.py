"""Trainer configs speak TRL's and Open-R1's language: their field names read as ours, loss_type
takes TRL's names, unknown fields suggest the closest one, a missing model or dataset is one line,
and `final/` is a model folder that loads (no optimizer state)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dataengine.cli import cli
from dataengine.config import ConfigError, load_config, load_config_dict


def test_trl_field_names_are_read_as_ours():
    cfg = load_config_dict({"train_sft": {
        "model_name_or_path": "Qwen/Qwen2.5-0.5B", "learning_rate": 2e-5, "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 8, "save_steps": 50, "save_total_limit": 3, "logging_steps": 5,
        "num_train_epochs": 3, "lr_scheduler_type": "cosine_with_min_lr", "lr_scheduler_kwargs": {"min_lr_rate": 0.05},
    }}).section("train_sft")
    assert (cfg.model, cfg.lr, cfg.batch_size, cfg.grad_accum, cfg.save_every, cfg.keep_checkpoints, cfg.log_every,
            cfg.epochs, cfg.min_lr_ratio) == ("Qwen/Qwen2.5-0.5B", 2e-5, 4, 8, 50, 3, 5, 3.0, 0.05)


def test_reward_funcs_weights_and_trl_loss_types():
    g = load_config_dict({"train_grpo": {"reward_funcs": ["accuracy", "format"], "reward_weights": [1.0, 0.5],
                                         "loss_type": "dapo", "per_device_train_batch_size": 16,
                                         "gradient_accumulation_steps": 4, "num_generations": 16}}).section("train_grpo")
    assert g.rewards == {"accuracy": 1.0, "format": 0.5} and g.loss_type == "dapo"
    assert g.micro_batch_size == 16 and g.prompts_per_step == 4  # 16 * 4 completions / 16 per prompt
    # our earlier loss names still read, as TRL's
    assert load_config_dict({"train_grpo": {"loss_type": "constant_norm"}}).section("train_grpo").loss_type == "dr_grpo"
    with pytest.raises(ConfigError, match="reward_weights: expected 2 weights"):
        load_config_dict({"train_grpo": {"reward_funcs": ["accuracy", "format"], "reward_weights": [1.0]}})
    with pytest.raises(ConfigError, match="given twice"):
        load_config_dict({"train_sft": {"lr": 1e-5, "learning_rate": 2e-5}})
    with pytest.raises(ConfigError, match="push_to_hub: True is not supported here"):
        load_config_dict({"train_grpo": {"push_to_hub": True}})


def test_unknown_trainer_field_suggests_the_closest_known_one():
    with pytest.raises(ConfigError, match=r"train_sft\.learnin_rate: unknown field \(did you mean 'learning_rate'\?\)"):
        load_config_dict({"train_sft": {"learnin_rate": 1e-5}})
    with pytest.raises(ConfigError, match=r"did you mean 'grad_accum'"):
        load_config_dict({"train_sft": {"grad_acum": 2}})


def test_an_open_r1_style_recipe_loads(tmp_path):
    """The fields of open-r1's recipes/*/grpo/config_demo.yaml that have a meaning here."""
    recipe = tmp_path / "grpo.yaml"
    recipe.write_text(yaml.safe_dump({"train_grpo": {
        "model_name_or_path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "model_revision": "main",
        "torch_dtype": "bfloat16", "attn_implementation": "sdpa", "dataset_name": "prompts.parquet",
        "dataset_prompt_column": "problem", "system_prompt": "You are a helpful AI Assistant.", "bf16": True,
        "do_eval": False, "gradient_accumulation_steps": 4, "gradient_checkpointing": True,
        "gradient_checkpointing_kwargs": {"use_reentrant": False}, "learning_rate": 2.0e-05, "log_completions": True,
        "log_level": "info", "logging_first_step": True, "logging_steps": 1, "logging_strategy": "steps",
        "lr_scheduler_type": "cosine", "max_prompt_length": 512, "max_completion_length": 1024, "max_steps": 100,
        "num_generations": 16, "output_dir": "runs/grpo", "overwrite_output_dir": True, "per_device_eval_batch_size": 16,
        "per_device_train_batch_size": 16, "push_to_hub": False, "report_to": ["wandb"],
        "reward_funcs": ["accuracy", "format"], "reward_weights": [1.0, 1.0], "save_strategy": "steps",
        "save_steps": 25, "save_total_limit": 1, "seed": 42, "temperature": 0.7, "warmup_ratio": 0.1,
    }}))
    g = load_config(recipe).section("train_grpo")
    assert g.dataset == str(tmp_path / "prompts.parquet") and g.output_dir == str(tmp_path / "runs" / "grpo")
    assert g.prompt_field == "problem" and g.prompts_per_step == 4 and g.save_every == 25


def test_missing_model_or_dataset_is_one_line(tmp_path, messages_dataset, tiny_qwen):
    for fields, expect in (
        ({"model": str(tmp_path / "no-such-model"), "dataset": str(messages_dataset)}, "no such model folder"),
        ({"model": str(tiny_qwen), "dataset": str(tmp_path / "nope.jsonl")}, "no such dataset folder or file"),
        ({"model": "no-such-org/no-such-model-xyz", "dataset": str(messages_dataset)}, "cannot load"),
    ):
        cfg = tmp_path / "sft.yaml"
        cfg.write_text(yaml.safe_dump({"train_sft": {**fields, "output_dir": str(tmp_path / "run"), "max_steps": 1}}))
        env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
        r = CliRunner(env=env).invoke(cli, ["train", "sft", "--config", str(cfg)])
        assert r.exit_code == 1, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0] and "Traceback" not in r.output, r.output


def test_final_is_a_loadable_model_folder_without_optimizer_state(tiny_qwen, messages_dataset, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    cfg = tmp_path / "sft.yaml"
    cfg.write_text(yaml.safe_dump({"train_sft": {"model_name_or_path": str(tiny_qwen), "dataset": str(messages_dataset),
                                               "output_dir": str(out), "max_length": 192,
                                               "per_device_train_batch_size": 4, "max_steps": 2}}))
    r = CliRunner().invoke(cli, ["train", "sft", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    final = out / "final"
    assert not (final / "state.pt").exists() and not list(final.glob("*optim*"))
    assert (out / "checkpoint-2" / "state.pt").exists(), "the resumable state sits beside final/"
    model = AutoModelForCausalLM.from_pretrained(final)
    tok = AutoTokenizer.from_pretrained(final)
    assert model.config.vocab_size >= len(tok) - 1 and os.path.getsize(next(final.glob("*.safetensors"))) > 0
    # a larger budget resumes from checkpoint-2, not from scratch
    r = CliRunner().invoke(cli, ["train", "sft", "--config", str(cfg), "--max-steps", "3"])
    assert r.exit_code == 0, r.output
    from trainers.runtime import read_metrics

    assert [row["step"] for row in read_metrics(out) if "loss" in row] == [1, 2, 3]
    assert Path(final / "config.yaml").exists()


def test_trl_use_vllm_selects_colocated_vllm_rollouts():
    """TRL's `use_vllm: true` + `vllm_mode: colocate` is our `rollout_engine: vllm`; server mode (a separate
    `trl vllm-serve` process) does not exist here and is refused rather than ignored."""
    g = load_config_dict({"train_grpo": {"use_vllm": True, "vllm_mode": "colocate"}}).section("train_grpo")
    assert g.rollout_engine == "vllm"
    assert load_config_dict({"train_grpo": {"use_vllm": False}}).section("train_grpo").rollout_engine == "transformers"
    with pytest.raises(ConfigError, match="vllm_mode: 'server' is not supported"):
        load_config_dict({"train_grpo": {"use_vllm": True, "vllm_mode": "server"}})
    with pytest.raises(ConfigError, match="contradicts rollout_engine"):
        load_config_dict({"train_grpo": {"use_vllm": True, "rollout_engine": "transformers"}})
