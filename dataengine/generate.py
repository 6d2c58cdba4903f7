"""The generate stage: prompts in the workspace → n sampled traces each, through any engine.

Resumable: a trace's id is `trace_id_for(prompt_id, sample_idx, model_name, sampling_run)`, where
`sampling_run` is a stable name from config (not a timestamp). A run first reads the trace ids
already stored and asks the engine only for the missing (prompt, sample) pairs, so a rerun after
a crash, a kill -9 or a larger `n` generates exactly what is missing.

Crash-safe: results are written as one immutable shard per batch (`batch_size` prompts, or every
`flush_seconds` for engines that stream results as they finish), so a kill loses at most the
batch in flight.

Shardable: `rank`/`world_size` (or RANK/WORLD_SIZE, or SLURM_PROCID/SLURM_NTASKS, set by a
launcher) give each worker the prompts whose `prompt_id` hash falls in its slot; workers on many
machines write to one workspace at once without coordination.

Errors: a (prompt, sample) pair whose request finally failed (after the engine's retries) is
written to `quarantine` (source `generate:<prompt_id>`, line = sample index, reason
`engine_error`, the error in `detail`), not to `traces`. It stays missing, so the next run retries
it; counts reconcile: ``in = out + quarantined``.

>>> counts = run_generate(ws, load_config("pipeline.yaml"), engine="simulated", n=4)   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from dataengine import sqlfiles
from dataengine.config import PipelineConfig, apply_overrides, section
from dataengine.engines import (
    ENGINES,
    Engine,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
    get_engine,
)
from dataengine.engines.simulated import DEFAULT_DEFECT_RATES, DEFECTS
from dataengine.prompting import PromptRenderer
from dataengine.records import THINK_FORMATS, content_hash, dumps_metadata, split_completion
from dataengine.schema import TABLES
from dataengine.store import Run, Workspace

# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


@dataclass
class SimulatedOptions:
    seed: int = field(default=0, metadata={"help": "part of every synthetic sample's seed (with prompt text and sample index)"})
    defect_rates: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_DEFECT_RATES),
        metadata={"help": f"probability per sample of each planted defect: {', '.join(DEFECTS)}"},
    )
    think_format: str = field(default="think", metadata={"help": "think, or prompt_opened (no opening <think> tag)"})
    latency_s: float = field(default=0.0, metadata={"help": "sleep per request, to imitate generation time in load tests"})
    length: str = field(default="short", metadata={"help": "short (~1 KB completions) or r1 (R1-length, ~20 KB mean)"})


@dataclass
class OpenAIOptions:
    base_url: str = field(default="http://localhost:8000/v1", metadata={"help": "the server's OpenAI API root"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "environment variable that holds the API key"})
    max_concurrency: int = field(default=256, metadata={"help": "requests in flight at once"})
    request_timeout: float = field(default=1800.0, metadata={"help": "seconds per attempt (long CoT takes minutes)"})
    connect_timeout: float = field(default=10.0, metadata={"help": "seconds to open a connection"})
    max_retries: int = field(default=6, metadata={"help": "retries on 429/5xx/timeouts/malformed responses"})
    backoff_base: float = field(default=1.0, metadata={"help": "first retry waits about this long; doubles each time"})
    backoff_max: float = field(default=60.0, metadata={"help": "longest wait between retries"})
    extra_body: dict[str, Any] = field(default_factory=dict, metadata={"help": "merged into each request body (e.g. top_k)"})
    max_response_bytes: int = field(default=64 << 20, metadata={"help": "a larger response body fails the request (response_too_large)", "min": 1})


@dataclass
class TransformersOptions:
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N"})
    dtype: str = field(default="auto", metadata={"help": "auto, float32, bfloat16, float16"})
    batch_size: int = field(default=8, metadata={"help": "prompts per transformers generate() call"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow model code from the hub"})


@dataclass
class VLLMOptions:
    tensor_parallel_size: int = field(default=1, metadata={"help": "GPUs one model spans"})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "share of GPU memory vLLM may take"})
    max_model_len: int | None = field(default=None, metadata={"help": "context length (default: the model's)"})
    dtype: str = field(default="auto", metadata={"help": "auto, bfloat16, float16"})
    enable_prefix_caching: bool = field(default=True, metadata={"help": "share KV cache across the n samples / exemplars"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow model code from the hub"})
    llm_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"help": "any other vllm.LLM argument"})


@section("generate")
@dataclass
class GenerateConfig:
    engine: str = field(default="simulated", metadata={"help": "simulated, openai, transformers or vllm"})
    model: str = field(default="simulated", metadata={"path": "maybe", "help": "model path / hub id / served name"})
    model_name: str | None = field(default=None, metadata={"help": "name recorded on traces and in trace ids (default: model)"})
    sampling_run: str = field(default="default", metadata={"help": "stable name of this sampling run; part of trace ids, so a rerun resumes it"})
    n: int = field(default=4, metadata={"help": "samples per prompt"})
    temperature: float = field(default=0.6, metadata={"help": "R1 report: 0.6"})
    top_p: float = field(default=0.95, metadata={"help": "R1 report: 0.95"})
    max_tokens: int = field(default=32768, metadata={"help": "R1 report: 32,768 generated tokens"})
    stop: list[str] = field(default_factory=list, metadata={"help": "extra stop strings"})
    seed: int | None = field(default=None, metadata={"help": "base of per-request seeds (engines that take one); none: unseeded"})
    template: str = field(default="rejection_sampling", metadata={"path": "maybe", "help": "cold_start, rejection_sampling, non_reasoning_cot, plain, or a .jinja path"})
    template_vars: dict[str, Any] = field(default_factory=dict, metadata={"help": "extra variables for the template"})
    system_prompt: str | None = field(default=None, metadata={"help": "system message (R1 recommends none)"})
    exemplars: str | None = field(default=None, metadata={"path": True, "help": "cold-start exemplar pool YAML (default: shipped pool)"})
    template_seed: int = field(default=0, metadata={"help": "seeds the per-prompt exemplar choice"})
    sources: list[str] = field(default_factory=list, metadata={"help": "only prompts from these sources (empty: all)"})
    domains: list[str] = field(default_factory=list, metadata={"help": "only prompts of these domains (empty: all)"})
    limit: int | None = field(default=None, metadata={"help": "at most this many prompts (the first by prompt_id)"})
    batch_size: int = field(default=256, metadata={"help": "prompts per written shard: a kill loses at most this batch"})
    flush_seconds: float = field(default=60.0, metadata={"help": "streaming engines also write a shard at least this often"})
    rank: int | None = field(default=None, metadata={"help": "this worker's slot (default: $RANK, $SLURM_PROCID, else 0)"})
    world_size: int | None = field(default=None, metadata={"help": "number of workers (default: $WORLD_SIZE, $SLURM_NTASKS, else 1)"})
    think_format: str = field(default="auto", metadata={"help": "think markers of the model's output (auto, think, prompt_opened, …)"})
    simulated: SimulatedOptions = field(default_factory=SimulatedOptions, metadata={"help": "simulated engine options"})
    openai: OpenAIOptions = field(default_factory=OpenAIOptions, metadata={"help": "openai engine options"})
    transformers: TransformersOptions = field(default_factory=TransformersOptions, metadata={"help": "transformers engine options"})
    vllm: VLLMOptions = field(default_factory=VLLMOptions, metadata={"help": "vllm engine options"})

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine: unknown engine {self.engine!r}; known: {', '.join(sorted(ENGINES))}")
        if self.n < 1:
            raise ValueError("n: must be >= 1")
        if self.batch_size < 1:
            raise ValueError("batch_size: must be >= 1")
        if not 0.0 <= self.top_p <= 1.0:
            raise ValueError("top_p: must be in [0, 1]")
        if self.temperature < 0:
            raise ValueError("temperature: must be >= 0")
        if self.max_tokens < 1:
            raise ValueError("max_tokens: must be >= 1")
        if not self.sampling_run.strip():
            raise ValueError("sampling_run: must be a non-empty name")
        if self.think_format != "auto" and self.think_format not in THINK_FORMATS:
            raise ValueError(f"think_format: unknown {self.think_format!r}; known: auto, {', '.join(THINK_FORMATS)}")
        if self.world_size is not None and self.world_size < 1:
            raise ValueError("world_size: must be >= 1")
        if self.rank is not None and self.world_size is not None and not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank: {self.rank} is not in [0, world_size={self.world_size})")
        unknown = set(self.simulated.defect_rates) - set(DEFECTS)
        if unknown:
            raise ValueError(f"simulated.defect_rates: unknown defects {sorted(unknown)}; known: {', '.join(DEFECTS)}")

    @property
    def recorded_model(self) -> str:
        return self.model_name or self.model

    def sampling_params(self) -> SamplingParams:
        return SamplingParams(n=self.n, temperature=self.temperature, top_p=self.top_p,
                              max_tokens=self.max_tokens, stop=tuple(self.stop), seed=self.seed)

    def engine_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the configured engine: `model` plus its own option block."""
        opts = {"simulated": self.simulated, "openai": self.openai, "transformers": self.transformers,
                "vllm": self.vllm}.get(self.engine)
        kwargs = asdict(opts) if opts is not None else {}
        if self.engine == "simulated":
            kwargs["model"] = self.recorded_model
        else:
            kwargs["model"] = self.model
        return kwargs


@section("demo_prompts")
@dataclass
class DemoPromptsConfig:
    seed: int = field(default=0, metadata={"help": "seeds the generated problems"})
    kinds: list[str] = field(default_factory=list, metadata={"help": "problem kinds (empty: all of demo_problems.MAKERS)"})
    contaminated_rate: float = field(default=0.02, metadata={"help": "share of prompts planted from a benchmark (labelled)"})
    benchmark_path: str | None = field(
        default=None,
        metadata={"path": True, "help": "benchmark JSONL to plant from (e.g. ../shared/data/benchmarks/math500_limo.jsonl); none: the project's own benchmark-like prompts"},
    )

    def validate(self) -> None:
        if not 0.0 <= self.contaminated_rate <= 1.0:
            raise ValueError("contaminated_rate: must be in [0, 1]")
        from dataengine.demo_problems import MAKERS

        bad = set(self.kinds) - set(MAKERS)
        if bad:
            raise ValueError(f"kinds: unknown {sorted(bad)}; known: {', '.join(sorted(MAKERS))}")


# --------------------------------------------------------------------------------------------
# Rank / world size
# --------------------------------------------------------------------------------------------


def resolve_rank(rank: int | None, world_size: int | None, env: dict[str, str] | None = None) -> tuple[int, int]:
    """(rank, world_size) from config, else a launcher's environment (torchrun, Slurm), else (0, 1)."""
    env = dict(os.environ if env is None else env)
    if world_size is None:
        world_size = int(env.get("WORLD_SIZE") or env.get("SLURM_NTASKS") or 1)
    if rank is None:
        rank = int(env.get("RANK") or env.get("SLURM_PROCID") or 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    return rank, world_size


def owner_of(prompt_id: str, world_size: int) -> int:
    """The rank that samples `prompt_id`: a hash slot, stable whatever else is in the table."""
    return int(prompt_id[:12], 16) % world_size


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------

ProgressFn = Callable[[int, int, int], None]  # (samples done, samples to do, tokens generated)


@dataclass
class _Pending:
    prompt: dict[str, Any]
    missing: list[int]
    trace_ids: list[str]


# Requests rendered and handed to the engine at a time (bounds memory for huge prompt sets;
# streaming engines keep their concurrency within a chunk).
PLAN_CHUNK = 20_000


@dataclass
class _Work:
    request: GenerationRequest
    prompt: dict[str, Any]
    sample_indices: list[int]
    rendered: str
    trace_ids: list[str]


@dataclass
class GenerateReport:
    run_id: str
    rank: int
    world_size: int
    prompts: int = 0
    pairs_in: int = 0
    already_stored: int = 0
    traces_written: int = 0
    quarantined: int = 0
    shards: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    # Time spent waiting for the engine; the rest of `seconds` is this stage's own overhead
    # (rendering, id checks, splitting, writing), which must never be what holds a GPU back.
    engine_wait_s: float = 0.0
    render_s: float = 0.0
    finish_reasons: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, Any]:
        secs = max(self.seconds, 1e-9)
        return {
            "in": self.pairs_in, "out": self.traces_written, "quarantined": self.quarantined,
            "already_stored": self.already_stored, "prompts": self.prompts, "shards": self.shards,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "rank": self.rank, "world_size": self.world_size,
            "samples_per_s": round(self.traces_written / secs, 2),
            "completion_tokens_per_s": round(self.completion_tokens / secs, 1),
            "engine_wait_s": round(self.engine_wait_s, 3), "pipeline_s": round(max(0.0, self.seconds - self.engine_wait_s), 3),
            **{f"finish:{k}": v for k, v in self.finish_reasons.items()},
        }


def load_prompts(ws: Workspace, gc: GenerateConfig) -> list[dict[str, Any]]:
    sql = sqlfiles.load("generate/prompts")
    rows = ws.query(sql, {"sources": gc.sources, "domains": gc.domains, "limit": gc.limit}).fetchall()
    cols = ("prompt_id", "prompt", "domain", "language", "reference_answer", "metadata")
    return [dict(zip(cols, r)) for r in rows]


def _trace_ids(prompt_id: str, n: int, model: str, sampling_run: str) -> dict[int, str]:
    """`trace_id_for(prompt_id, i, model, sampling_run)` for i < n, hashing the shared prefix once
    (planning a million prompts hashes n ids each)."""
    base = hashlib.blake2b(digest_size=16)
    base.update(f"trace\x1f{prompt_id}\x1f".encode("utf-8", "surrogatepass"))
    tail = f"\x1f{model}\x1f{sampling_run}\x1f".encode("utf-8", "surrogatepass")
    out = {}
    for i in range(n):
        h = base.copy()
        h.update(str(i).encode() + tail)
        out[i] = h.hexdigest()
    return out


def plan(ws: Workspace, gc: GenerateConfig, rank: int, world_size: int) -> tuple[list[_Pending], GenerateReport]:
    """Every missing (prompt, sample) pair of this rank's prompts; rendering waits until its chunk
    is sent (`_build`), so a million cold-start prompts are never all in memory at once."""
    stored = ws.existing_ids("traces", "trace_id")
    model = gc.recorded_model
    report = GenerateReport("", rank, world_size)
    pending: list[_Pending] = []
    for p in load_prompts(ws, gc):
        if owner_of(p["prompt_id"], world_size) != rank:
            continue
        report.prompts += 1
        ids = _trace_ids(p["prompt_id"], gc.n, model, gc.sampling_run)
        missing = [i for i, tid in ids.items() if tid not in stored]
        report.already_stored += gc.n - len(missing)
        if not missing:
            continue
        report.pairs_in += len(missing)
        pending.append(_Pending(p, missing, [ids[i] for i in missing]))
    return pending, report


def _build(item: _Pending, renderer: PromptRenderer, base: SamplingParams) -> _Work:
    """The engine request for one prompt's missing samples."""
    p = item.prompt
    if isinstance(p["metadata"], str) or p["metadata"] is None:
        p["metadata"] = json.loads(p["metadata"]) if p["metadata"] else {}
    messages = renderer.messages(p)
    seed = None
    if base.seed is not None:
        # Per request, so samples differ across prompts but a rerun asks for the same thing.
        seed = int(content_hash(base.seed, p["prompt_id"], item.missing)[:8], 16) & 0x7FFFFFFF
    params = SamplingParams(n=len(item.missing), temperature=base.temperature, top_p=base.top_p,
                            max_tokens=base.max_tokens, stop=base.stop, seed=seed)
    req = GenerationRequest(
        p["prompt_id"], messages=messages, params=params,
        metadata={"prompt_id": p["prompt_id"], "sample_indices": item.missing, "reference_answer": p["reference_answer"],
                  "prompt_metadata": p["metadata"], "domain": p["domain"]},
    )
    return _Work(req, p, item.missing, messages[-1]["content"], item.trace_ids)


_TRACE_COLUMNS = (
    "trace_id", "prompt_id", "sample_idx", "model", "sampling_run", "engine", "source", "domain", "language",
    "sampling_params", "rendered_prompt", "completion", "reasoning", "answer", "think_closed", "think_format",
    "finish_reason", "prompt_tokens", "completion_tokens", "latency_s", "run_id", "metadata",
)
# The `traces` schema's own types (fails at import if a column above is not in the schema).
_TRACE_SCHEMA = pa.schema([TABLES["traces"].schema.field(c) for c in _TRACE_COLUMNS])


class _Writer:
    """Buffers finished results and writes them as one traces shard (+ quarantine rows)."""

    def __init__(self, ws: Workspace, gc: GenerateConfig, run: Run, report: GenerateReport, engine_name: str):
        self.ws, self.gc, self.run, self.report = ws, gc, run, report
        self.engine_name = engine_name
        self.sampling_json = json.dumps(gc.sampling_params().as_dict(), sort_keys=True)
        # Column-wise: a batch becomes an Arrow table without a dict per row.
        self.traces: list[list[Any]] = [[] for _ in _TRACE_COLUMNS]
        self.quarantine: list[dict[str, Any]] = []
        self.pending = 0
        self.seq = 0

    def add(self, w: _Work, res: GenerationResult) -> int:
        """Rows for one result; returns its generated tokens."""
        self.pending += 1
        p, model, gc = w.prompt, self.gc.recorded_model, self.gc
        if not res.ok or len(res.completions) != len(w.sample_indices):
            error = res.error or f"engine returned {len(res.completions)} completions for {len(w.sample_indices)} samples"
            raw = json.dumps({"messages": w.request.messages, "params": w.request.params.as_dict()}, ensure_ascii=False)
            for idx in w.sample_indices:
                self.quarantine.append({
                    "run_id": self.run.run_id, "source": f"generate:{p['prompt_id']}", "line": idx,
                    "field": "completion", "reason": res.error_reason or "engine_error",
                    "detail": f"{error} (attempts: {res.attempts})",
                    "raw": raw[: 1 << 16],
                })
            self.report.quarantined += len(w.sample_indices)
            return 0
        tokens = 0
        rendered = res.rendered_prompt or w.rendered
        for idx, tid, c in zip(w.sample_indices, w.trace_ids, res.completions):
            s = split_completion(c.text, gc.think_format)
            meta = {"template": gc.template, **c.metadata}
            if res.attempts > 1:
                meta["attempts"] = res.attempts
            row = (
                tid, p["prompt_id"], idx, model, gc.sampling_run, self.engine_name, f"generate:{gc.sampling_run}",
                p["domain"], p["language"], self.sampling_json, rendered, c.text, s.reasoning, s.answer,
                s.think_closed, s.think_format, c.finish_reason, res.prompt_tokens, c.completion_tokens,
                res.latency_s, self.run.run_id, dumps_metadata(meta),
            )
            for col, value in zip(self.traces, row):
                col.append(value)
            self.report.finish_reasons[c.finish_reason or "none"] += 1
            tokens += c.completion_tokens or 0
        self.report.prompt_tokens += res.prompt_tokens or 0  # prefilled once per request, whatever n
        self.report.completion_tokens += tokens
        return tokens

    def flush(self) -> None:
        name = f"{self.run.run_id}-{self.seq:06d}"
        rows = len(self.traces[0])
        if rows:
            self.ws.write_shard("traces", pa.Table.from_arrays(
                [pa.array(col, type=f.type) for col, f in zip(self.traces, _TRACE_SCHEMA)], schema=_TRACE_SCHEMA), name=name)
            self.report.traces_written += rows
            self.report.shards += 1
        if self.quarantine:
            self.ws.write_shard("quarantine", self.quarantine, name=name)
        self.seq += 1
        self.traces, self.quarantine, self.pending = [[] for _ in _TRACE_COLUMNS], [], 0


def run_generate(
    ws: Workspace,
    cfg: PipelineConfig,
    progress: ProgressFn | None = None,
    engine_obj: Engine | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Sample the missing (prompt, sample) pairs of this worker's prompts; returns the run's counts.

    `overrides` are `generate` config fields (the CLI's flags): `engine="simulated", n=4`, ….
    `progress(done, total, tokens)` is called after every result. `engine_obj` is an engine the
    caller already built (a flow that keeps one vLLM model loaded across runs); the stage then
    neither builds nor closes one, and records `engine_obj.name` / `.model`.
    """
    gc: GenerateConfig = apply_overrides(cfg.section("generate"), overrides)
    gc.validate()
    rank, world_size = resolve_rank(gc.rank, gc.world_size)
    # Two workers on one rank of one sampling run would sample the same pairs: the second waits
    # for the lease, then plans against what the first stored.
    with ws.lease(f"generate:{gc.sampling_run}:rank{rank}-of-{world_size}"):
        return _run_generate(ws, gc, rank, world_size, progress, engine_obj)


def _run_generate(ws: Workspace, gc: GenerateConfig, rank: int, world_size: int,
                  progress: ProgressFn | None, engine_obj: Engine | None) -> dict[str, Any]:
    t0 = time.perf_counter()  # planning (reading ids, rendering templates) is overhead too
    pending, report = plan(ws, gc, rank, world_size)
    renderer = PromptRenderer(gc.template, gc.system_prompt, gc.exemplars, gc.template_seed, gc.template_vars)
    if pending:
        _build(pending[0], renderer, gc.sampling_params())  # a template error stops the run before it starts
    config = {"generate": asdict(gc), "rank": rank, "world_size": world_size}
    run = ws.start_run("generate", config)
    report.run_id = run.run_id
    if not pending:
        report.seconds = time.perf_counter() - t0
        run.finish(report.counts())
        return report.counts() | {"run_id": run.run_id}
    engine = engine_obj if engine_obj is not None else get_engine(gc.engine, **gc.engine_kwargs())
    writer = _Writer(ws, gc, run, report, engine.name)
    done = tokens = 0
    last_flush = time.monotonic()
    results = _results(engine, pending, gc, renderer, report)
    try:
        while True:
            t_wait = time.perf_counter()
            item = next(results, None)
            report.engine_wait_s += time.perf_counter() - t_wait
            if item is None:
                break
            w, res = item
            tokens += writer.add(w, res)
            done += len(w.sample_indices)
            if writer.pending >= gc.batch_size or time.monotonic() - last_flush >= gc.flush_seconds:
                writer.flush()
                last_flush = time.monotonic()
            if progress is not None:
                progress(done, report.pairs_in, tokens)
        writer.flush()
    except BaseException as e:
        report.seconds = time.perf_counter() - t0
        try:
            writer.flush()  # what finished is complete and kept: a rerun skips it
        finally:  # even when that write fails too (a full disk): the run is recorded failed
            run.finish(report.counts(), status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
        raise
    finally:
        if engine_obj is None:
            engine.close()
    report.engine_wait_s -= report.render_s  # rendering ran inside the wait; it is our overhead
    report.seconds = time.perf_counter() - t0
    assert report.pairs_in == report.traces_written + report.quarantined, report
    run.finish(report.counts())
    return report.counts() | {"run_id": run.run_id, "seconds": round(report.seconds, 3)}


def _results(engine: Engine, pending: list[_Pending], gc: GenerateConfig, renderer: PromptRenderer,
             report: GenerateReport) -> Iterator[tuple[_Work, GenerationResult]]:
    """(work, result) pairs as the engine finishes them, one rendered chunk at a time."""
    base = gc.sampling_params()
    for start in range(0, len(pending), PLAN_CHUNK):
        t0 = time.perf_counter()
        works = [_build(item, renderer, base) for item in pending[start : start + PLAN_CHUNK]]
        report.render_s += time.perf_counter() - t0
        by_id = {w.request.request_id: w for w in works}
        for res in engine.iter_generate([w.request for w in works], chunk_size=gc.batch_size):
            yield by_id.pop(res.request_id), res
        # Every request comes back exactly once: an engine that dropped one is a bug, not data.
        if by_id:
            raise RuntimeError(f"engine {engine.name} returned no result for {len(by_id)} requests")


# --------------------------------------------------------------------------------------------
# demo-prompts
# --------------------------------------------------------------------------------------------


def run_demo_prompts(ws: Workspace, cfg: PipelineConfig, count: int, **overrides: Any) -> dict[str, Any]:
    """Write `count` generated problems (plus planted benchmark prompts) into `prompts`."""
    from dataengine.demo_problems import demo_prompts, load_benchmark

    dc: DemoPromptsConfig = apply_overrides(cfg.section("demo_prompts"), overrides)
    dc.validate()
    if count < 1:
        raise ValueError("demo-prompts: N must be >= 1")
    bench = load_benchmark(dc.benchmark_path) if dc.contaminated_rate > 0 else []
    run = ws.start_run("demo_prompts", {"count": count, "demo_prompts": asdict(dc)})
    stored = ws.existing_ids("prompts", "prompt_id")
    rows, already, planted = [], 0, 0
    for p in demo_prompts(count, dc.seed, dc.kinds or None, dc.contaminated_rate, bench):
        if p.prompt_id in stored:
            already += 1
            continue
        planted += bool(p.metadata["planted_defects"])
        row = p.to_row()
        row["run_id"] = run.run_id
        rows.append(row)
    for start in range(0, len(rows), 50_000):
        ws.write_shard("prompts", rows[start : start + 50_000], name=f"{run.run_id}-{start // 50_000:04d}")
    counts = {"in": count, "out": len(rows), "quarantined": 0, "already_stored": already, "contaminated": planted}
    run.finish(counts)
    return counts | {"run_id": run.run_id}
