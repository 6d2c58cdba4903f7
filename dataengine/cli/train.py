"""`train sft` and `train grpo`: thin wrappers over trainers.sft / trainers.grpo.

Single process here; for several GPUs run the same config under torchrun
(`torchrun --nproc-per-node 8 -m trainers.sft --config FILE`), which the command prints with --dry-run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from dataengine.cli._common import cli, user_errors
from dataengine.config import apply_overrides, load_config


@cli.group()
def train() -> None:
    """Thin SFT and GRPO trainers (torch + transformers; torchrun/FSDP2 on GPU nodes)."""


def _section(config_path: Path, name: str, output_dir: str | None, max_steps: int | None, resume_from: str | None):  # type: ignore[no-untyped-def]
    cfg = load_config(config_path)
    if name not in cfg.sections:
        raise click.ClickException(f"{config_path}: no `{name}:` section")
    section = apply_overrides(cfg.section(name), {"output_dir": output_dir, "max_steps": max_steps,
                                                  "resume_from": resume_from})
    try:
        section.validate()
        section.require_inputs()
    except ValueError as e:
        raise click.ClickException(f"{config_path}: {name}: {e}") from None
    return section


_options = [
    click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="Pipeline YAML with the trainer's section."),
    click.option("--output-dir", help="Override output_dir."),
    click.option("--max-steps", type=int, help="Override max_steps."),
    click.option("--resume-from", help="Checkpoint folder, 'auto' (newest in output_dir) or '' (fresh)."),
    click.option("--dry-run", is_flag=True, help="Print the resolved section and the torchrun command, train nothing."),
]


def _with_options(fn):  # type: ignore[no-untyped-def]
    for opt in reversed(_options):
        fn = opt(fn)
    return fn


def _require_files(section, config_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    try:
        section.require_files()
    except ValueError as e:
        raise click.ClickException(f"{config_path}: {name}: {e}") from None


@contextmanager
def _load_errors(config_path: Path, name: str) -> Iterator[None]:
    """A model the hub or the disk cannot give is one line, not the loader's traceback."""
    try:
        yield
    except OSError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise click.ClickException(f"{config_path}: {name}: cannot load: {first}") from None


def _dry_run(section, name: str, module: str, config_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import asdict

    import yaml

    click.echo(yaml.safe_dump({name: asdict(section)}, sort_keys=False, allow_unicode=True), nl=False)
    click.echo(f"# multi-GPU: torchrun --nproc-per-node 8 -m {module} --config {config_path}")


@train.command("sft")
@_with_options
@user_errors
def train_sft_cmd(config_path: Path, output_dir: str | None, max_steps: int | None, resume_from: str | None,
                  dry_run: bool) -> None:
    """Supervised fine-tuning on chat `messages` (e.g. distil a student from an exported mix).

    Loss on assistant tokens only; checkpoints (with the resolved config) in output_dir; a rerun
    resumes from the newest checkpoint. Metrics go to output_dir/metrics.jsonl.

    \b
    Examples:
      dataengine train sft --config examples/train/distill_qwen2.5_1.5b.yaml
      dataengine train sft --config examples/train/distill_llama3.1_8b.yaml --max-steps 100 --dry-run
      torchrun --nproc-per-node 8 -m trainers.sft --config examples/train/distill_qwen2.5_1.5b.yaml
    """
    section = _section(config_path, "train_sft", output_dir, max_steps, resume_from)
    if dry_run:
        _dry_run(section, "train_sft", "trainers.sft", config_path)
        return
    _require_files(section, config_path, "train_sft")
    from trainers.sft import train_sft

    with _load_errors(config_path, "train_sft"):
        click.echo(train_sft(section))


@train.command("grpo")
@_with_options
@user_errors
def train_grpo_cmd(config_path: Path, output_dir: str | None, max_steps: int | None, resume_from: str | None,
                   dry_run: bool) -> None:
    """GRPO with rule rewards (accuracy, format, language consistency, overlong) from the config.

    \b
    Examples:
      dataengine train grpo --config examples/train/r1_zero_grpo.yaml
      dataengine train grpo --config examples/train/r1_stage2_grpo.yaml --output-dir runs/stage2
      torchrun --nproc-per-node 8 -m trainers.grpo --config examples/train/r1_zero_grpo.yaml
    """
    section = _section(config_path, "train_grpo", output_dir, max_steps, resume_from)
    if dry_run:
        _dry_run(section, "train_grpo", "trainers.grpo", config_path)
        return
    _require_files(section, config_path, "train_grpo")
    from trainers.grpo import train_grpo

    with _load_errors(config_path, "train_grpo"):
        click.echo(train_grpo(section))
