"""`mix` and `export`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dataengine.cli._common import cli, echo_result, json_option, parse_kv, user_errors, workspace_from
from dataengine.config import load_config


def _weights(items: tuple[str, ...], flag: str) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for k, v in parse_kv(items, flag).items():
        try:
            out[k] = float(v)
        except ValueError:
            raise click.BadParameter(f"{k}={v}: weight must be a number", param_hint=flag) from None
    return out


@cli.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pipeline YAML; its `mix` section is the spec.")
@click.option("--mix-id", help="Name of the mix (default: mix-<hash of the spec>).")
@click.option("--reasoning", type=int, help="Quota of the reasoning bucket (default 600000).")
@click.option("--non-reasoning", type=int, help="Quota of the non-reasoning bucket (default 200000).")
@click.option("--reasoning-weight", multiple=True, metavar="DOMAIN=W", help="Domain weight in the reasoning bucket.")
@click.option("--non-reasoning-weight", multiple=True, metavar="CATEGORY=W", help="Category weight in the non-reasoning bucket.")
@click.option("--max-per-prompt", type=int, help="At most k traces per prompt.")
@click.option("--shortfall", type=click.Choice(["fail", "fill", "upsample"]), help="Policy when a pool is too small.")
@click.option("--upsample-cap", type=int, help="Most copies of one trace under --shortfall upsample.")
@click.option("--seed", type=int, help="Seed of the deterministic order.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.pass_context
@user_errors
def mix(ctx: click.Context, config_path: Path | None, mix_id: str | None, reasoning: int | None,
        non_reasoning: int | None, reasoning_weight: tuple[str, ...], non_reasoning_weight: tuple[str, ...],
        max_per_prompt: int | None, shortfall: str | None, upsample_cap: int | None, seed: int | None,
        as_json: bool) -> None:
    """Assemble the SFT mix: quotas per bucket, weights per domain, seeded; writes `mix_members`.

    Traces qualify by think block, length, filters, verdicts and dedup (stages with no rows
    constrain nothing). A domain whose pool is too small is reported, and the policy decides:
    fail (exit 1), fill from other domains, or upsample up to a cap.

    \b
    Examples:
      dataengine mix --config pipeline.yaml
      dataengine mix --reasoning 200 --non-reasoning 50 --seed 3
      dataengine mix --reasoning-weight math=0.6 --reasoning-weight code=0.4 --shortfall fail
      dataengine sql --query mix_summary
    """
    from dataengine.mix.assemble import MixShortfall, run_mix

    cfg = load_config(config_path)
    overrides = {"mix_id": mix_id, "reasoning": reasoning, "non_reasoning": non_reasoning,
                 "reasoning_weights": _weights(reasoning_weight, "--reasoning-weight"),
                 "non_reasoning_weights": _weights(non_reasoning_weight, "--non-reasoning-weight"),
                 "max_per_prompt": max_per_prompt, "shortfall": shortfall, "upsample_cap": upsample_cap, "seed": seed}
    try:
        out = run_mix(workspace_from(ctx), cfg, **overrides)
    except MixShortfall as e:
        if as_json:  # the machine-readable answer lists every shortfall, and the exit status is still 1
            click.echo(json.dumps({"error": str(e), "shortfall": e.report}, indent=2, default=str))
            ctx.exit(1)
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(f"mix {out['mix_id']}: {out['rows']:,} rows ({out['traces']:,} traces) in {out['seconds']}s")
    for bucket, domains in sorted(out["rows_by_domain"].items()):
        quota = out["quotas"][bucket]
        click.echo(f"  {bucket}: {sum(domains.values()):,} of {quota:,}  "
                   + ", ".join(f"{d}={n:,}" for d, n in sorted(domains.items(), key=lambda x: -x[1])))
    for s in out["shortfall"]:
        extra = " (filled from other domains)" if s.get("filled_from_other_domains") and s["domain"] != "*" else ""
        if s.get("upsampled_rows"):
            extra = f" (upsampled {s['upsampled_rows']:,} rows)"
        click.echo(f"  shortfall {s['bucket']}/{s['domain']}: target {s['target']:,}, qualified {s['available']:,}, "
                   f"missing {s['missing']:,}{extra}")
    not_run = [k for k, ran in out["stages_run"].items() if not ran]
    if not_run:
        click.echo(f"  stages not run (no constraint): {', '.join(not_run)}")


@cli.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pipeline YAML; its `export` section.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--mix-id", help="Mix to export (default: the latest mix run).")
@click.option("--test-fraction", type=float, help="Share of prompts held out as a test split.")
@click.option("--format", "formats", multiple=True, type=click.Choice(["datasets", "parquet", "jsonl"]),
              help="What to write (repeatable; default all three).")
@click.option("--system-prompt", help="System message for every row that has none.")
@click.option("--layout", type=click.Choice(["messages", "prompt_completion"]),
              help="messages (default), or TRL's conversational prompt/completion columns.")
@click.option("--shard-mb", type=int, help="Target size of one Parquet/JSONL shard in MB.")
@click.option("--repo-id", help="Push to this hub dataset repo (needs --token or $HF_TOKEN).")
@click.option("--token", envvar="HF_TOKEN", help="Hub token (default: $HF_TOKEN).")
@json_option
@click.pass_context
@user_errors
def export(ctx: click.Context, config_path: Path | None, out_dir: Path, mix_id: str | None,
           test_fraction: float | None, formats: tuple[str, ...], system_prompt: str | None, layout: str | None,
           shard_mb: int | None, repo_id: str | None, token: str | None, as_json: bool) -> None:
    """Export a mix as a Hugging Face dataset: save_to_disk folder, Parquet and JSONL shards, card.

    Rows carry `messages` (reasoning rows: `<think>…</think>` then the answer), prompt_id,
    trace_id, source, bucket, domain, num_tokens and verdicts. Streams in bounded memory.

    \b
    Examples:
      dataengine export --config pipeline.yaml --out out/r1-mix
      dataengine export --out out/r1-mix --test-fraction 0.01 --format parquet --format jsonl
      dataengine export --out out/r1-mix --repo-id me/r1-mix --token hf_xxx
    """
    from dataengine.mix.export import run_export

    cfg = load_config(config_path)
    overrides = {"mix_id": mix_id, "test_fraction": test_fraction, "formats": list(formats) or None,
                 "system_prompt": system_prompt, "shard_bytes": shard_mb * 1_000_000 if shard_mb else None,
                 "repo_id": repo_id, "layout": layout}
    try:
        out = run_export(workspace_from(ctx), cfg, out_dir, token=token, **overrides)
    except OSError as e:
        if e.filename is None:  # Arrow/Polars name no file: say which export failed (a full disk)
            e.filename = str(out_dir)
        raise
    if as_json:
        echo_result("export", out, True)
        return
    click.echo(f"exported mix {out['mix_id']}: " + ", ".join(f"{s}={n:,}" for s, n in sorted(out["rows"].items()))
               + f" rows to {out['out_dir']} in {out['seconds']}s")
    for fmt, paths in sorted(out["files"].items()):
        click.echo(f"  {fmt}: {len(paths)} file(s)")
    for kind, paths in sorted(out.get("trainer_files", {}).items()):
        click.echo(f"  {kind}: {', '.join(paths)}")
    click.echo(f"  card: {out['card']}")
    if "pushed_to" in out:
        click.echo(f"  pushed to {out['pushed_to']}")


@cli.command("augment-cot")
@click.option("--engine", "engine_name", required=True, help="A registered engine (vllm, openai, transformers, …).")
@click.option("--engine-arg", multiple=True, metavar="NAME=VALUE", help="Keyword argument of the engine (repeatable).")
@click.option("--category", "categories", multiple=True,
              help="Categories to augment (repeatable; default writing, factual_qa, translation).")
@click.option("--limit", type=int, help="Augment at most this many traces.")
@click.option("--max-tokens", type=int, default=1024, show_default=True, help="Token budget of one chain of thought.")
@json_option
@click.pass_context
@user_errors
def augment_cot(ctx: click.Context, engine_name: str, engine_arg: tuple[str, ...], categories: tuple[str, ...],
                limit: int | None, max_tokens: int, as_json: bool) -> None:
    """Give non-reasoning rows of chosen categories a short chain of thought, written by an engine.

    Trivial queries ("hello") are never augmented. The new traces keep the original answer after a
    `<think>` block; the mix prefers them over the plain originals of the same prompt.

    \b
    Examples:
      dataengine augment-cot --engine openai --engine-arg base_url=http://localhost:8000/v1 --engine-arg model=r1
      dataengine augment-cot --engine vllm --engine-arg model=/models/r1 --category writing --limit 20000
    """
    from dataengine.engines.base import get_engine
    from dataengine.mix.cot import augment_cot as run_augment

    engine = get_engine(engine_name, **parse_kv(engine_arg, "--engine-arg"))
    with engine:
        out = run_augment(workspace_from(ctx), engine, list(categories) or ("writing", "factual_qa", "translation"),
                          limit=limit, max_tokens=max_tokens)
    echo_result("augment-cot", out, as_json)
