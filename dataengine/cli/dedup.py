"""`dedup` and `decontaminate`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dataengine.cli._common import cli, echo_result, json_option, parse_kv, user_errors, workspace_from
from dataengine.config import load_config


@cli.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--threshold", type=float, help="Jaccard similarity at or above which texts are near-duplicates.")
@click.option("--bands", type=int, help="LSH bands (bands x rows <= num_perm).")
@click.option("--rows", type=int, help="Signature slots per band.")
@click.option("--num-perm", type=int, help="MinHash signature slots.")
@click.option("--ngram", type=int, help="Tokens per shingle (word n-grams; CJK: character n-grams).")
@click.option("--verify", type=click.Choice(["exact", "signature", "none"]), help="How LSH candidates are checked.")
@click.option("--text", type=click.Choice(["completion", "reasoning"]), help="Trace field compared.")
@click.option("--prefer", "preference", help="Representative preference, comma-separated: accepted,shorter,longer,seeded.")
@click.option("--seed", type=int, help="Seed for MinHash and the seeded tie-break.")
@click.option("--workers", type=int, help="Processes hashing trace shards (0: one per CPU).")
@json_option
@click.pass_context
@user_errors
def dedup(
    ctx: click.Context, config_path: Path | None, threshold: float | None, bands: int | None, rows: int | None,
    num_perm: int | None, ngram: int | None, verify: str | None, text: str | None, preference: str | None,
    seed: int | None, workers: int | None, as_json: bool,
) -> None:
    """Exact and MinHash near-duplicate dedup of prompts and traces → `dedup`, `dedup_prompts`.

    Exact: normalised text (NFKC, case, whitespace, punctuation). Near: MinHash LSH over word
    5-grams (CJK: character 5-grams); the bands x rows split implies a Jaccard threshold that is
    printed. Prompts cluster across sources; traces are compared within a prompt cluster. One
    representative per group is kept: accepted over rejected, then shorter, then seeded.

    \b
    Examples:
      dataengine dedup
      dataengine dedup --threshold 0.8 --bands 20 --rows 6 --verify signature
      dataengine dedup --prefer accepted,longer,seeded --config pipeline.yaml
      dataengine sql "select * from dedup_cluster_sizes order by size desc limit 20"
    """
    from dataengine.dedup.stage import run_dedup

    overrides = {
        "threshold": threshold, "bands": bands, "rows": rows, "num_perm": num_perm, "ngram": ngram,
        "verify": verify, "text": text, "seed": seed, "workers": workers,
        "preference": [p.strip() for p in preference.split(",")] if preference else None,
    }
    counts = run_dedup(workspace_from(ctx), load_config(config_path), **overrides)
    if as_json:
        echo_result("dedup", counts, True)
        return
    click.echo(
        f"dedup: {counts['in']} traces -> {counts['out']} representatives "
        f"({counts['exact_duplicates']} exact duplicates, {counts['near_duplicates']} near duplicates); "
        f"{counts['prompts']} prompts, {counts['prompt_duplicates']} duplicate prompts; "
        f"threshold {counts['threshold']} (bands imply {counts['implied_threshold']}); run {counts['run_id']}"
    )


@cli.command()
@click.option("--benchmark", "-b", "benchmarks", multiple=True, metavar="NAME=PATH",
              help="A benchmark file (JSONL/JSON/Parquet/CSV/TSV) to check against (repeatable).")
@click.option("--ngram", type=int, help="Tokens per n-gram (default 8; 13 is stricter).")
@click.option("--min-hits", type=int, help="Shared n-grams needed for a hit.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@click.pass_context
@user_errors
def decontaminate(
    ctx: click.Context, benchmarks: tuple[str, ...], ngram: int | None, min_hits: int | None, config_path: Path | None,
    as_json: bool,
) -> None:
    """Find prompts that share n-grams with benchmark problems → `contamination_hits`.

    Word n-grams (default 8) over normalised text, character n-grams in Chinese; n-grams shared
    by many items of a benchmark are stock phrases and ignored. The hits also go into the
    contamination JSON of `dedup` and `dedup_prompts`.

    \b
    Examples:
      dataengine decontaminate --benchmark math500=../shared/data/benchmarks/math500_limo.jsonl
      dataengine decontaminate -b aime24=aime24.jsonl -b gsm8k=gsm8k_test.jsonl --ngram 13
      dataengine decontaminate --config pipeline.yaml
      dataengine sql "select * from contamination_per_benchmark"
      dataengine sql --query contamination_hits_latest
    """
    from dataengine.dedup.stage import run_decontaminate

    counts = run_decontaminate(
        workspace_from(ctx), load_config(config_path), benchmarks=parse_kv(benchmarks, "--benchmark"),
        ngram=ngram, min_hits=min_hits,
    )
    if as_json:
        echo_result("decontaminate", counts, True)
        return
    click.echo(
        f"decontaminate: {counts['in']} prompts, {counts['contaminated_prompts']} contaminated "
        f"({counts['hits']} hits, {counts['ngram']}-grams); per benchmark: "
        f"{json.dumps(counts['prompts_hit_per_benchmark'])}; run {counts['run_id']}"
    )
