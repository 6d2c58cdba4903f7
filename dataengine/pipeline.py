"""Pipelines as data: which stages run in which order, and the `run` config section.

The Prefect flows in `flows/` read this; they add orchestration (tasks, retries, caching, Ray),
never stage logic. Each stage is a plain `run_<stage>(ws, cfg, **overrides) -> dict` in the library,
found through `STAGE_FUNCTIONS` so a pipeline can name stages without importing all of them.

>>> PIPELINES["rejection_sampling"][:3]
('prompts', 'generate', 'filter')
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from dataengine.config import section

# The R1 recipe's two data pipelines (DESIGN.md): cold start is few-shot generation from an RL
# checkpoint, format/readability/language filters, light verification and a small export (a mix
# of the reasoning bucket only, so export has its usual input);
# rejection sampling adds selection, dedup, decontamination and the mix with non-reasoning data.
PIPELINES: dict[str, tuple[str, ...]] = {
    "cold_start": ("prompts", "generate", "filter", "verify", "mix", "export"),
    "rejection_sampling": (
        "prompts", "generate", "filter", "verify", "select", "dedup", "decontaminate", "mix", "export",
    ),
}


@dataclass(frozen=True)
class StageSpec:
    """How the flows call one stage: its entry point and the tables whose shards are its input.

    `reads` feeds the task cache key: a rerun whose inputs (shard files of these tables) and config
    are unchanged skips the stage. `remote` is true for stages that touch engines or the network,
    which get retries.
    """

    name: str
    entry: tuple[str, ...]  # "module:function" candidates, first importable wins
    reads: tuple[str, ...]
    remote: bool = False
    # Takes `rank` / `world_size` overrides (as config fields): runs as `run.shards` shard tasks.
    shardable: bool = False
    # Takes the `out_dir` it writes to (export): the flows pass `run.export_dir`.
    out_dir: bool = False
    # Config sections the stage reads (cache key); a change elsewhere does not re-run it.
    sections: tuple[str, ...] = ()


STAGES: dict[str, StageSpec] = {
    s.name: s
    for s in (
        StageSpec("prompts", ("dataengine.pipeline:run_prompts",), (), sections=("run", "ingest", "sft", "demo_prompts")),
        StageSpec("generate", ("dataengine.generate:run_generate",), ("prompts",), remote=True, shardable=True,
                  sections=("generate",)),
        StageSpec("filter", ("dataengine.filter_stage:run_filter", "dataengine.filtering:run_filter",
                             "dataengine.filtering.stage:run_filter"), ("traces", "prompts"),
                  sections=("filter",)),
        StageSpec("verify", ("dataengine.verify.stage:run_verify", "dataengine.verify:run_verify"),
                  ("traces", "prompts"), remote=True, sections=("verify",)),
        StageSpec("select", ("dataengine.verify.select:run_select", "dataengine.select:run_select"),
                  ("traces", "prompts", "filter_results", "verifications"), sections=("select",)),
        StageSpec("dedup", ("dataengine.dedup.stage:run_dedup", "dataengine.dedup:run_dedup"),
                  ("traces", "prompts", "filter_results", "verifications", "selections"), sections=("dedup",)),
        StageSpec("decontaminate", ("dataengine.dedup.stage:run_decontaminate", "dataengine.dedup:run_decontaminate"),
                  ("traces", "prompts", "dedup"), sections=("decontaminate",)),
        StageSpec("mix", ("dataengine.mix:run_mix", "dataengine.mix.stage:run_mix"),
                  ("traces", "prompts", "filter_results", "verifications", "dedup", "dedup_prompts",
                   "contamination_hits", "selections"), sections=("mix",)),
        StageSpec("export", ("dataengine.mix:run_export", "dataengine.mix.export:run_export", "dataengine.export:run_export"),
                  ("traces", "prompts", "mix_members", "filter_results", "verifications", "dedup"), out_dir=True,
                  sections=("export", "filter", "verify", "dedup", "decontaminate", "mix")),
    )
}


class StageUnavailable(RuntimeError):
    """A pipeline names a stage whose module is not part of this installation."""


def resolve_stage(name: str) -> Callable[..., dict[str, Any]]:
    """The `run_<stage>` function of stage `name`."""
    try:
        spec = STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; known: {', '.join(STAGES)}") from None
    tried = []
    for entry in spec.entry:
        mod, _, attr = entry.partition(":")
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name is not None and mod.startswith(e.name):
                tried.append(entry)
                continue
            raise
        if hasattr(module, attr):
            return getattr(module, attr)
        tried.append(entry)
    raise StageUnavailable(f"stage {name!r} is not available in this installation (looked for {', '.join(tried)})")


def stage_available(name: str) -> bool:
    try:
        resolve_stage(name)
    except StageUnavailable:
        return False
    return True


def accepts_shards(stage: str, fn: Callable[..., Any]) -> bool:
    """Whether a stage takes `rank` / `world_size` (it can run as parallel shard tasks)."""
    params = inspect.signature(fn).parameters
    return STAGES[stage].shardable or ("rank" in params and "world_size" in params)


@dataclass
class PromptSource:
    """A prompt file ingested before generation (the `ingest --kind prompts` options)."""

    path: str = field(metadata={"path": True})
    mapping: dict[str, str] = field(default_factory=dict)
    domain: str | None = None
    language: str | None = None
    source: str | None = None


@dataclass
class SftSource:
    """A non-reasoning SFT file for the mix (the `ingest-sft` options)."""

    path: str = field(metadata={"path": True})
    format: str = "auto"
    category: str | None = None
    language: str | None = None
    source: str | None = None


@section("run")
@dataclass
class RunConfig:
    steps: list[str] | None = field(default=None, metadata={"help": "stages to run, in order; default: the pipeline's own list"})
    executor: Literal["local", "ray"] = field(default="local", metadata={"help": "where shard tasks run: in the flow's process, or on Ray"})
    ray_address: str | None = field(default=None, metadata={"help": "Ray cluster address (ray://host:10001 or 'auto'); None starts a local Ray"})
    ray_num_cpus: int | None = field(default=None, metadata={"help": "CPUs of the local Ray started when ray_address is None"})
    shards: int = field(default=1, metadata={"help": "shard tasks per stage, for stages that take rank/world_size"})
    retries: int = field(default=3, metadata={"help": "retries of tasks that touch engines or the network"})
    retry_delays: list[float] = field(default_factory=lambda: [2.0, 5.0, 15.0], metadata={"help": "seconds between retries"})
    demo_prompts: int = field(
        default=0, metadata={"help": "generated demo problems added as prompts (settings: the demo_prompts section)"}
    )
    prompts: list[PromptSource] = field(default_factory=list, metadata={"help": "prompt files ingested first"})
    non_reasoning: list[SftSource] = field(
        default_factory=list, metadata={"help": "non-reasoning SFT files (Alpaca, ShareGPT, messages) ingested for the mix"}
    )
    report: bool = field(default=True, metadata={"help": "write the HTML report at the end"})
    export_dir: str | None = field(default=None, metadata={"path": True, "help": "where export writes the dataset; default <workspace>/artifacts/dataset"})
    stage_overrides: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata={"help": "keyword overrides per stage, passed to run_<stage>"}
    )

    def validate(self) -> None:
        if self.shards < 1:
            raise ValueError("shards must be >= 1")
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        for s in self.steps or []:
            if s not in STAGES:
                raise ValueError(f"steps: unknown stage {s!r}; known: {', '.join(STAGES)}")
        for s in self.stage_overrides:
            if s not in STAGES:
                raise ValueError(f"stage_overrides: unknown stage {s!r}; known: {', '.join(STAGES)}")


def pipeline_steps(name: str, run: RunConfig) -> list[str]:
    if run.steps:
        return list(run.steps)
    try:
        return list(PIPELINES[name])
    except KeyError:
        raise ValueError(f"unknown pipeline {name!r}; known: {', '.join(PIPELINES)}") from None


def run_prompts(ws: Any, cfg: Any, **overrides: Any) -> dict[str, Any]:
    """The `prompts` step: ingest the configured prompt files and non-reasoning SFT files, and add
    generated demo problems. Every part skips what is already stored, so a rerun adds nothing."""
    from dataengine.ingest import IngestOptions, ingest

    run: RunConfig = cfg.section("run")
    n = overrides.get("demo_prompts", run.demo_prompts)
    record = ws.start_run("prompts", {"prompts": [p.__dict__ for p in run.prompts], "demo_prompts": n,
                                      "non_reasoning": [p.__dict__ for p in run.non_reasoning]})
    counts: dict[str, Any] = {"files": 0, "prompts_written": 0, "quarantined": 0, "demo_prompts": 0,
                              "non_reasoning_traces": 0}
    with record:
        for src in run.prompts:
            opts = IngestOptions(kind="prompts", mapping=dict(src.mapping), domain=src.domain,
                                 language=src.language, source=src.source)
            rep = ingest(ws, src.path, opts, cfg.section("ingest"))
            counts["files"] += 1
            counts["prompts_written"] += rep.prompts_written
            counts["quarantined"] += rep.quarantined
        for sft in run.non_reasoning:
            ingest_sft = _entry("dataengine.mix.sft_ingest:ingest_sft", "non-reasoning SFT ingest (the mix stage)")
            rep = ingest_sft(ws, sft.path, sft.format, cfg.section("sft"), source=sft.source, category=sft.category,
                             language=sft.language)
            counts["files"] += 1
            counts["non_reasoning_traces"] += rep.traces_written
            counts["quarantined"] += rep.quarantined
        if n:
            demo = _entry("dataengine.generate:run_demo_prompts", "demo prompts (the generate stage)")
            res = demo(ws, cfg, n)
            counts["demo_prompts"] = int(res.get("written", res.get("out", 0)) or 0)
    written = counts["prompts_written"] + counts["demo_prompts"] + counts["non_reasoning_traces"]
    record.finish({"in": written + counts["quarantined"], "out": written, "quarantined": counts["quarantined"]})
    return counts


def _entry(target: str, what: str) -> Callable[..., Any]:
    mod, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ModuleNotFoundError, AttributeError):
        raise StageUnavailable(f"{what} is not available in this installation (looked for {target})") from None
