"""`ingest`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dataengine.cli._common import (
    cli,
    console,
    echo_result,
    json_option,
    parse_kv,
    progress_bar,
    user_errors,
    workspace_from,
)
from dataengine.config import apply_overrides, load_config
from dataengine.ingest import IngestConfig, IngestOptions
from dataengine.ingest import ingest as run_ingest
from dataengine.records import THINK_FORMATS


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(["traces", "prompts", "sft"]), default="traces", show_default=True,
              help="sft: an existing SFT set, ingested as non-reasoning traces (see --sft-format).")
@click.option("--sft-format", type=click.Choice(["auto", "alpaca", "sharegpt", "messages", "seed_tasks"]),
              default="auto", show_default=True, help="Shape of an SFT set (--kind sft).")
@click.option("--category", help="Category for every row of an SFT set (default: source mapping, then rules).")
@click.option("--map", "-m", "mapping", multiple=True, metavar="CANONICAL=FIELD",
              help="Read a canonical field from another input field (repeatable).")
@click.option("--domain", help="Domain for rows without a domain field (math, code, science, …).")
@click.option("--language", help="Language for rows without a language field (ISO code).")
@click.option("--model", help="Model name for traces without a model field.")
@click.option("--source", help="Source name recorded on every row (default: the file name).")
@click.option("--sampling-run", help="Sampling-run tag that goes into trace ids (default: the source).")
@click.option("--think-format", type=click.Choice(["auto", *THINK_FORMATS]), default="auto", show_default=True,
              help="Think markers of this source; prompt_opened: the chat template opened <think>.")
@click.option("--completion-after", metavar="MARKER",
              help="Drop everything up to MARKER (a chat template rendered into the completion).")
@click.option("--columns", help="Comma-separated header for headerless CSV/TSV.")
@click.option("--split", help="Split of a datasets folder or hub dataset (default: all / train).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--max-row-bytes", type=int, help="Quarantine rows larger than this.")
@click.option("--strict", is_flag=True, default=None, help="Exit 1 when any row is quarantined.")
@click.option("--replace", is_flag=True, help="Re-parse a file ingested before: its rows supersede the old rows of "
              "the same source (whose filter and verify rows are dropped: re-run those stages).")
@json_option
@click.pass_context
@user_errors
def ingest(
    ctx: click.Context, path: Path, kind: str, sft_format: str, category: str | None, mapping: tuple[str, ...], domain: str | None,
    language: str | None, model: str | None, source: str | None, sampling_run: str | None,
    think_format: str, completion_after: str | None, columns: str | None, split: str | None,
    config_path: Path | None, max_row_bytes: int | None, strict: bool | None, replace: bool = False,
    as_json: bool = False,
) -> None:
    """Ingest a JSONL / JSON / Parquet / CSV / TSV file, a datasets folder, or a hub id.

    Bad rows go to the `quarantine` table with file, line, field and reason; the summary
    reconciles: in = taken + already stored + quarantined. Re-ingesting a file adds nothing,
    unless --replace: then its re-parsed rows supersede the old ones.

    \b
    Examples:
      dataengine ingest traces.jsonl --kind traces --map completion=response \\
          --map reference_answer=gold_answer --domain math
      dataengine ingest prompts.parquet --kind prompts --map prompt=problem --map reference_answer=answer
      dataengine ingest sky_t1.jsonl --map prompt=question --map completion=code --map reference_answer=answer
      dataengine ingest r1.jsonl --map completion=response --think-format prompt_opened --replace
      dataengine ingest s1k.parquet --map prompt=question --map reasoning=gemini_thinking_trajectory \\
          --map answer=gemini_attempt --map reference_answer=solution
      dataengine ingest mgsm_de.tsv --kind prompts --columns prompt,reference_answer --language de
      dataengine ingest alpaca_zh_demo.json --kind sft --sft-format alpaca --language zh
      dataengine ingest sharegpt.jsonl --kind sft --sft-format sharegpt
    """
    if kind == "sft":
        _ingest_sft(ctx, path, sft_format, category, source, language, config_path, strict, as_json)
        return
    cfg: IngestConfig = load_config(config_path).section("ingest")
    cfg = apply_overrides(cfg, {"max_row_bytes": max_row_bytes, "strict": strict})
    opts = IngestOptions(
        kind=kind,  # type: ignore[arg-type]
        mapping=parse_kv(mapping, "--map"),
        domain=domain, language=language, model=model, source=source, sampling_run=sampling_run,
        think_format=think_format, completion_after=completion_after,
        columns=[c.strip() for c in columns.split(",")] if columns else None, split=split, replace=replace,
    )
    ws = workspace_from(ctx)
    with progress_bar(f"ingest {path.name}", None) as update:
        report = run_ingest(ws, path, opts, cfg, progress=update)
    echo_result("ingest", _as_dict(report), as_json, [report.summary()])
    if report.quarantined:
        console.print(
            f"[yellow]{report.quarantined} rows quarantined[/]: "
            f"dataengine sql \"select line, field, reason, detail from quarantine where run_id = '{report.run_id}'\""
        )
        if cfg.strict:
            raise SystemExit(1)


def _as_dict(report: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(report) if dataclasses.is_dataclass(report) else dict(vars(report))


def _ingest_sft(ctx: click.Context, path: Path, fmt: str, category: str | None, source: str | None,
                language: str | None, config_path: Path | None, strict: bool | None, as_json: bool = False) -> None:
    """`--kind sft`: the conversion and categorisation live in dataengine.mix.sft_ingest."""
    from dataengine.mix.sft_ingest import ingest_sft

    cfg = load_config(config_path)
    report = ingest_sft(workspace_from(ctx), path, fmt, cfg.section("sft"), source=source, category=category,
                        language=language)
    echo_result("ingest", _as_dict(report), as_json, [report.summary()])
    if report.quarantined:
        console.print(
            f"[yellow]{report.quarantined} rows quarantined[/]: "
            f"dataengine sql \"select line, field, reason, detail from quarantine where run_id = '{report.run_id}'\""
        )
        if strict or cfg.section("ingest").strict:
            raise SystemExit(1)
