"""`generate` and `demo-prompts`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from dataengine.cli._common import cli, console, echo_result, json_option, user_errors, workspace_from
from dataengine.config import apply_overrides, load_config


@contextmanager
def _generation_bar(label: str) -> Iterator[Callable[[int, int, int], None]]:
    """A progress bar with samples/s, tokens/s and ETA; silent when stderr is not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("samples"),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
    ]
    t0 = time.monotonic()
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as prog:
        task = prog.add_task(label, total=None, rate="")

        def update(done: int, total: int, tokens: int) -> None:
            dt = max(time.monotonic() - t0, 1e-6)
            prog.update(task, completed=done, total=total, rate=f"{done / dt:,.1f} samples/s {tokens / dt:,.0f} tok/s")

        yield update


@cli.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pipeline YAML; its `generate` section is the base, flags override it.")
@click.option("--engine", type=click.Choice(["simulated", "openai", "transformers", "vllm"]))
@click.option("--model", help="Model path, hub id, or the served model name (openai).")
@click.option("--model-name", help="Name recorded on traces and in trace ids (default: --model).")
@click.option("--sampling-run", help="Stable name of the sampling run (part of trace ids; reruns resume it).")
@click.option("--n", "n", type=int, help="Samples per prompt.")
@click.option("--temperature", type=float)
@click.option("--top-p", type=float)
@click.option("--max-tokens", type=int)
@click.option("--seed", type=int, help="Base of per-request seeds.")
@click.option("--template", help="cold_start, rejection_sampling, non_reasoning_cot, plain, or a .jinja path.")
@click.option("--source", "sources", multiple=True, help="Only prompts from this source (repeatable).")
@click.option("--domain", "domains", multiple=True, help="Only prompts of this domain (repeatable).")
@click.option("--limit", type=int, help="At most this many prompts (the first by prompt_id).")
@click.option("--batch-size", type=int, help="Prompts per shard written (a kill loses at most one batch).")
@click.option("--rank", type=int, help="This worker's slot (default: $RANK / $SLURM_PROCID).")
@click.option("--world-size", type=int, help="Number of workers (default: $WORLD_SIZE / $SLURM_NTASKS).")
@click.option("--base-url", help="openai engine: the server's API root, e.g. http://node:8000/v1.")
@click.option("--max-concurrency", type=int, help="openai engine: requests in flight.")
@click.option("--tensor-parallel-size", type=int, help="vllm engine: GPUs per model.")
@click.option("--device", help="transformers engine: auto, cpu, cuda.")
@json_option
@click.pass_context
@user_errors
def generate(ctx: click.Context, config_path: Path | None, engine: str | None, model: str | None, model_name: str | None,
             sampling_run: str | None, n: int | None, temperature: float | None, top_p: float | None,
             max_tokens: int | None, seed: int | None, template: str | None, sources: tuple[str, ...],
             domains: tuple[str, ...], limit: int | None, batch_size: int | None, rank: int | None,
             world_size: int | None, base_url: str | None, max_concurrency: int | None,
             tensor_parallel_size: int | None, device: str | None, as_json: bool) -> None:
    """Sample n traces per prompt with an engine; reruns generate only what is missing.

    Writes one `traces` shard per batch; requests that finally fail go to `quarantine`
    (reason engine_error) and are retried by the next run. Several workers (--rank/--world-size,
    or the RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS a launcher sets) share one workspace.

    \b
    Examples:
      dataengine demo-prompts 1000
      dataengine generate --engine simulated --n 4
      dataengine generate --config pipeline.yaml
      dataengine generate --engine openai --model Qwen/QwQ-32B --base-url http://gpu1:8000/v1 \\
          --template cold_start --sampling-run coldstart-v1 --n 4
      dataengine generate --engine vllm --model deepseek-ai/DeepSeek-R1-Distill-Qwen-7B \\
          --tensor-parallel-size 2 --rank 0 --world-size 8
      dataengine generate --engine transformers --model ./tiny --max-tokens 64 --device cpu
    """
    from dataengine.generate import run_generate

    cfg = load_config(config_path)
    gc = cfg.section("generate")
    gc = dataclasses.replace(
        gc,
        openai=apply_overrides(gc.openai, {"base_url": base_url, "max_concurrency": max_concurrency}),
        vllm=apply_overrides(gc.vllm, {"tensor_parallel_size": tensor_parallel_size}),
        transformers=apply_overrides(gc.transformers, {"device": device}),
    )
    cfg.sections["generate"] = gc
    overrides = {
        "engine": engine, "model": model, "model_name": model_name, "sampling_run": sampling_run, "n": n,
        "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed, "template": template,
        "sources": list(sources) or None, "domains": list(domains) or None, "limit": limit,
        "batch_size": batch_size, "rank": rank, "world_size": world_size,
    }
    ws = workspace_from(ctx)
    with _generation_bar(f"generate ({engine or gc.engine})") as update:
        counts = run_generate(ws, cfg, progress=update, **overrides)
    if as_json:
        echo_result("generate", counts, True)
        return
    click.echo(
        f"rank {counts['rank']}/{counts['world_size']}: {counts['prompts']} prompts; "
        f"in={counts['in']} pairs = written {counts['out']} + quarantined {counts['quarantined']} "
        f"(already stored {counts['already_stored']}); {counts['completion_tokens']} completion tokens, "
        f"{counts['samples_per_s']} samples/s, {counts['completion_tokens_per_s']} tok/s"
    )
    if counts["quarantined"]:
        console.print(
            f"[yellow]{counts['quarantined']} samples failed[/] (a rerun retries them): "
            f"dataengine sql \"select source, line, detail from quarantine where run_id = '{counts['run_id']}'\""
        )


@cli.command("demo-prompts")
@click.argument("count", type=int, metavar="N")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--seed", type=int, help="Seeds the generated problems.")
@click.option("--contaminated-rate", type=float, help="Share of prompts planted from a benchmark (labelled).")
@click.option("--benchmark", "benchmark_path", type=click.Path(exists=True, dir_okay=False),
              help="Benchmark JSONL to plant from (field problem/question/prompt), e.g. MATH-500.")
@json_option
@click.pass_context
@user_errors
def demo_prompts(ctx: click.Context, count: int, config_path: Path | None, seed: int | None,
                 contaminated_rate: float | None, benchmark_path: str | None, as_json: bool) -> None:
    """Write N generated math problems (exact answers) into `prompts`, for dry runs and demos.

    Arithmetic, algebra and counting problems with answers computed exactly; a share of
    benchmark problems is planted (metadata.planted_defects = ["benchmark_contaminated"]) so
    decontamination can be measured. Same N and seed: same prompts.

    \b
    Examples:
      dataengine demo-prompts 1000
      dataengine demo-prompts 500 --seed 7 --contaminated-rate 0.05 \\
          --benchmark ../shared/data/benchmarks/math500_limo.jsonl
    """
    from dataengine.generate import run_demo_prompts

    cfg = load_config(config_path)
    counts = run_demo_prompts(workspace_from(ctx), cfg, count, seed=seed, contaminated_rate=contaminated_rate,
                              benchmark_path=benchmark_path)
    echo_result("demo-prompts", counts, as_json,
                [f"prompts: wrote {counts['out']} ({counts['contaminated']} benchmark-contaminated), "
                 f"already stored {counts['already_stored']}"])
