"""Config sections of the mix stage: `sft` (non-reasoning ingest), `mix` (the spec) and `export`.

A pipeline file::

    mix:
      reasoning: 600000
      non_reasoning: 200000
      reasoning_weights: {math: 0.5, code: 0.3, science: 0.1, logic: 0.1}
      non_reasoning_weights: {writing: 0.3, factual_qa: 0.3, self_cognition: 0.05, translation: 0.1, chat: 0.05}
      max_per_prompt: 1
      shortfall: fill          # fail | fill | upsample
      seed: 0
    export:
      test_fraction: 0.01
      formats: [datasets, parquet, jsonl]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dataengine.config import section
from dataengine.mix.sft_formats import SFT_FORMATS

BUCKETS = ("reasoning", "non_reasoning")
SHORTFALL_POLICIES = ("fail", "fill", "upsample")
EXPORT_FORMATS = ("datasets", "parquet", "jsonl")
EXPORT_LAYOUTS = ("messages", "prompt_completion")


@section("sft")
@dataclass
class SftConfig:
    source_categories: dict[str, str] = field(
        default_factory=lambda: {"identity*": "self_cognition", "medical*": "medical"},
        metadata={"help": "file-name glob -> category for every row of a matching source; other rows are "
                          "categorised by keyword rules (dataengine.mix.categorize)"},
    )
    replacements: dict[str, str] = field(
        default_factory=dict,
        metadata={"help": "literal text replaced in prompts and responses, e.g. {'{{name}}': 'MyModel'} for "
                          "LLaMA-Factory's identity set"},
    )
    shard_rows: int = field(default=20_000, metadata={"help": "rows per Parquet shard written"})

    def validate(self) -> None:
        if self.shard_rows < 1:
            raise ValueError("shard_rows must be positive")


@section("mix")
@dataclass
class MixConfig:
    mix_id: str | None = field(default=None, metadata={"help": "name of the mix; default: mix-<hash of this section>"})
    reasoning: int = field(default=600_000, metadata={"help": "quota of the reasoning bucket (R1: about 600k)"})
    non_reasoning: int = field(default=200_000, metadata={"help": "quota of the non-reasoning bucket (R1: about 200k)"})
    reasoning_weights: dict[str, float] = field(
        default_factory=dict,
        metadata={"help": "domain -> weight inside the reasoning bucket; empty: proportional to the qualified pool. "
                          "Domains left out get no quota (fill may still use them)"},
    )
    non_reasoning_weights: dict[str, float] = field(
        default_factory=dict,
        metadata={"help": "category -> weight inside the non-reasoning bucket; empty: proportional to the pool"},
    )
    max_per_prompt: int = field(default=1, metadata={"help": "at most k traces per prompt (and bucket)"})
    min_chars: int = field(default=1, metadata={"help": "completions shorter than this (characters) do not qualify"})
    max_chars: int | None = field(default=None, metadata={"help": "completions longer than this (characters) do not qualify"})
    max_completion_tokens: int | None = field(
        default=None, metadata={"help": "traces whose stored completion_tokens exceed this do not qualify"})
    require_think_closed: bool = field(
        default=True, metadata={"help": "reasoning traces need a closed think block and a non-empty answer"})
    finish_reasons: list[str] = field(
        default_factory=lambda: ["stop"],
        metadata={"help": "finish_reason values that qualify; traces with no recorded finish_reason always do"},
    )
    filters: list[str] = field(
        default_factory=list,
        metadata={"help": "filters (filter_results.filter) a reasoning trace must pass; empty: every filter row "
                          "it has must pass. Ignored while filter_results is empty (stage not run)"},
    )
    require_filtered: bool = field(
        default=True, metadata={"help": "once filter_results has rows, reasoning traces without any row do not qualify"})
    accepted_verdicts: list[str] = field(
        default_factory=lambda: ["correct"], metadata={"help": "verifications.verdict values that accept a trace"})
    verifiers: list[str] = field(
        default_factory=list, metadata={"help": "verifiers whose verdicts count; empty: all"})
    verify_policy: Literal["any", "all"] = field(
        default="any",
        metadata={"help": "any: one accepting verdict and no 'incorrect'; all: every counted verdict accepts"},
    )
    require_verified: bool = field(
        default=True,
        metadata={"help": "once verifications has rows, reasoning traces without a counted verdict do not qualify"},
    )
    selection: str | None = field(
        default=None,
        metadata={"help": "`dataengine select` selection whose traces alone fill the reasoning bucket (its rank "
                          "orders each prompt's traces); default: the selection of the latest select run, when "
                          "one ran; 'none': ignore selections"},
    )
    dedup_representatives_only: bool = field(
        default=True, metadata={"help": "once dedup has rows, keep only representatives of duplicate groups"})
    exclude_contaminated: bool = field(
        default=True, metadata={"help": "drop traces whose dedup.contamination lists any benchmark hit"})
    shortfall: Literal["fail", "fill", "upsample"] = field(
        default="fill",
        metadata={"help": "when a domain's pool is smaller than its quota: fail; fill from other domains of the "
                          "bucket; or upsample the short domain (repeat rows) up to upsample_cap copies"},
    )
    upsample_cap: int = field(default=2, metadata={"help": "most copies of one trace under shortfall: upsample"})
    seed: int = field(default=0, metadata={"help": "seed of the deterministic order (md5 of seed and trace_id)"})

    def validate(self) -> None:
        if self.reasoning < 0 or self.non_reasoning < 0:
            raise ValueError("reasoning and non_reasoning quotas must be >= 0")
        if self.max_per_prompt < 1:
            raise ValueError("max_per_prompt must be >= 1")
        if self.upsample_cap < 1:
            raise ValueError("upsample_cap must be >= 1")
        for name in ("reasoning_weights", "non_reasoning_weights"):
            for k, w in getattr(self, name).items():
                if w < 0:
                    raise ValueError(f"{name}.{k}: weight must be >= 0, got {w}")
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError("max_chars must be >= min_chars")


@section("export")
@dataclass
class ExportConfig:
    mix_id: str | None = field(default=None, metadata={"help": "mix to export; default: the latest mix run"})
    formats: list[str] = field(
        default_factory=lambda: list(EXPORT_FORMATS),
        metadata={"help": "what to write: datasets (save_to_disk folder hf/), parquet (data/<split>-*.parquet), jsonl"},
    )
    test_fraction: float = field(
        default=0.0, metadata={"help": "share of prompts held out as a `test` split (split by prompt, never by trace)"})
    system_prompt: str | None = field(
        default=None, metadata={"help": "system message added to every row (rows with their own system keep it)"})
    shard_bytes: int = field(default=256 << 20, metadata={"help": "target text bytes per Parquet/JSONL shard"})
    batch_rows: int = field(default=2_000, metadata={"help": "rows per streamed batch (bounds memory)"})
    duckdb_memory_limit: str = field(default="2GB", metadata={"help": "DuckDB memory_limit while streaming"})
    repo_id: str | None = field(default=None, metadata={"help": "push to this hub repo when a token is given"})
    private: bool = field(default=True, metadata={"help": "create the hub repo as private"})
    card_title: str = field(default="R1-style SFT mix", metadata={"help": "title of the dataset card"})
    layout: str = field(default="messages", metadata={
        "help": "messages (one chat list per row), or prompt_completion (TRL's conversational prompt/completion: "
                "prompt = the turns before the last assistant turn, completion = that turn)"})
    chat_template: str | None = field(default="qwen2.5", metadata={
        "help": "write this family's chat template, with {% generation %} markers, as chat_template.jinja "
                "(for `trl sft --assistant_only_loss --chat_template_path`); one of qwen2.5, llama3; null: none"})
    license: str | None = field(default=None, metadata={
        "help": "license of the exported dataset (card front matter); default: 'other', with the sources' licenses listed"})
    source_licenses: dict[str, str] = field(default_factory=lambda: {"demo": "Apache-2.0"}, metadata={
        "help": "source-name glob -> license, listed on the card per source (default: the generated demo problems "
                "are the project's own); sources matching none are listed as unknown"})

    def validate(self) -> None:
        if self.layout not in EXPORT_LAYOUTS:
            raise ValueError(f"layout: expected one of {', '.join(EXPORT_LAYOUTS)}, got {self.layout!r}")
        from dataengine.chat_templates import TEMPLATES

        if self.chat_template is not None and self.chat_template not in TEMPLATES:
            raise ValueError(f"chat_template: expected one of {', '.join(TEMPLATES)} or null, got {self.chat_template!r}")
        bad = [f for f in self.formats if f not in EXPORT_FORMATS]
        if bad:
            raise ValueError(f"formats: unknown {bad}; known: {', '.join(EXPORT_FORMATS)}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError("test_fraction must be in [0, 1)")
        if self.shard_bytes < 1 << 16 or self.batch_rows < 1:
            raise ValueError("shard_bytes must be >= 64 KiB and batch_rows >= 1")


__all__ = ["BUCKETS", "EXPORT_FORMATS", "SFT_FORMATS", "SHORTFALL_POLICIES", "ExportConfig", "MixConfig", "SftConfig"]
