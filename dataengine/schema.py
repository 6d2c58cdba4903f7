"""The logical tables of DESIGN.md as Arrow schemas: the one source of truth for column names.

Each table is a folder of immutable Parquet shards. `key` names the columns that identify a row;
tables with `latest_wins` are re-derivable (a re-run of a stage writes new shards for the same
keys) and their view keeps the newest row per key by `written_at`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

STR = pa.string()
TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    latest_wins: bool = False
    # The key identifies one row even though the table is not re-derived: concurrent writers can
    # still store a key twice, so the current view keeps one row per key (the newest shard's).
    unique: bool = False
    # Columns holding JSON objects: the view casts them to DuckDB's JSON type.
    json_columns: tuple[str, ...] = ()
    # Text columns stored as a span of another column (issue 15: text stored once): for
    # (text, source), a shard row keeps `<text>_start` / `<text>_len` (code points into `source`)
    # and leaves `text` NULL; the views derive it with substr. A row whose text is not a
    # substring of its source (or an old shard without the span columns) keeps the text itself.
    text_spans: tuple[tuple[str, str], ...] = ()


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in fields] + [pa.field("written_at", TS)])


TABLES: dict[str, TableSpec] = {}


def register_table(spec: TableSpec) -> TableSpec:
    """Stages that own a table register it here (at import time of `dataengine.schema`)."""
    TABLES[spec.name] = spec
    return spec


register_table(
    TableSpec(
        "prompts",
        _schema(
            ("prompt_id", STR),
            ("source", STR),
            ("domain", STR),
            ("language", STR),
            ("prompt", STR),
            ("reference_answer", STR),
            ("tests", STR),
            ("metadata", STR),
            ("run_id", STR),
        ),
        key=("prompt_id",),
        latest_wins=True,
        json_columns=("metadata",),
    )
)

register_table(
    TableSpec(
        "traces",
        _schema(
            ("trace_id", STR),
            ("prompt_id", STR),
            ("sample_idx", pa.int32()),
            ("model", STR),
            ("sampling_run", STR),
            ("engine", STR),
            ("source", STR),
            ("domain", STR),
            ("language", STR),
            ("sampling_params", STR),
            ("rendered_prompt", STR),
            ("completion", STR),
            ("reasoning", STR),
            ("answer", STR),
            ("think_closed", pa.bool_()),
            ("think_format", STR),
            ("finish_reason", STR),
            ("prompt_tokens", pa.int32()),
            ("completion_tokens", pa.int32()),
            ("latency_s", pa.float64()),
            ("run_id", STR),
            ("metadata", STR),
            # Where `reasoning` and `answer` lie in `completion` (code points, 0-based start);
            # NULL in shards written before issue 15, which store the text in full.
            ("reasoning_start", pa.int32()),
            ("reasoning_len", pa.int32()),
            ("answer_start", pa.int32()),
            ("answer_len", pa.int32()),
        ),
        key=("trace_id",),
        # Writers skip ids already stored and hold a lease per rank / input file, but a writer
        # without the lease (or an older version) can still store an id twice: the view keeps one.
        latest_wins=False,
        unique=True,
        json_columns=("metadata", "sampling_params"),
        text_spans=(("reasoning", "completion"), ("answer", "completion")),
    )
)

register_table(
    TableSpec(
        "filter_results",
        _schema(
            ("trace_id", STR),
            ("filter", STR),
            ("passed", pa.bool_()),
            ("reason", STR),
            ("scores", STR),
            ("config_hash", STR),
            ("run_id", STR),
        ),
        key=("trace_id", "filter"),
        latest_wins=True,
        json_columns=("scores",),
    )
)

register_table(
    TableSpec(
        "verifications",
        _schema(
            ("trace_id", STR),
            ("verifier", STR),
            ("verdict", STR),
            ("answer", STR),
            ("details", STR),
            ("judge_model", STR),
            ("run_id", STR),
        ),
        key=("trace_id", "verifier"),
        latest_wins=True,
        json_columns=("details",),
    )
)

register_table(
    TableSpec(
        "selections",
        _schema(
            ("selection", STR),
            ("trace_id", STR),
            ("prompt_id", STR),
            ("rank", pa.int32()),
            ("policy", STR),
            ("features", STR),
            ("run_id", STR),
        ),
        key=("selection", "trace_id"),
        # Each select run writes every kept trace; the `selected_traces` view reads the latest run.
        latest_wins=False,
        json_columns=("features",),
    )
)

register_table(
    TableSpec(
        "dedup",
        _schema(
            ("trace_id", STR),
            ("prompt_id", STR),
            ("exact_group", STR),
            ("near_dup_cluster", STR),
            ("is_representative", pa.bool_()),
            ("contamination", STR),
            ("run_id", STR),
            # Added by the dedup stage (issue 6): the normalised-text hash of the completion
            # (global: equal completions under any prompt), the normalised-text hash of the
            # prompt, and the near-duplicate cluster of prompts across sources the trace's
            # prompt belongs to. exact_group is the completion hash within a prompt cluster.
            ("completion_hash", STR),
            ("prompt_exact_group", STR),
            ("prompt_cluster", STR),
        ),
        key=("trace_id",),
        latest_wins=True,
        json_columns=("contamination",),
    )
)

# Prompt-level dedup and contamination (issue 6): one row per prompt, so prompt pools can be
# deduplicated and decontaminated before any trace is generated.
register_table(
    TableSpec(
        "dedup_prompts",
        _schema(
            ("prompt_id", STR),
            ("source", STR),
            ("exact_group", STR),
            ("near_dup_cluster", STR),
            ("is_representative", pa.bool_()),
            ("contamination", STR),
            ("run_id", STR),
        ),
        key=("prompt_id",),
        latest_wins=True,
        json_columns=("contamination",),
    )
)

# Every benchmark n-gram hit (issue 6). A row with prompt_id NULL marks that run `run_id`
# checked `benchmark` (so a later clean run supersedes older hits); views read the newest run
# per benchmark.
register_table(
    TableSpec(
        "contamination_hits",
        _schema(
            ("run_id", STR),
            ("benchmark", STR),
            ("prompt_id", STR),
            ("item_id", STR),
            ("shared_ngrams", pa.int32()),
            ("ngrams", STR),
            ("ngram_n", pa.int32()),
            ("benchmark_path", STR),
        ),
        key=("run_id", "benchmark", "prompt_id", "item_id"),
        latest_wins=False,
        json_columns=("ngrams",),
    )
)

register_table(
    TableSpec(
        "mix_members",
        _schema(
            ("mix_id", STR),
            ("trace_id", STR),
            ("bucket", STR),
            ("domain", STR),
            ("reason", STR),
            ("run_id", STR),
            # Added by the mix stage (issue 7): the prompt, how many times the row is exported
            # (> 1 only under the upsample shortfall policy) and its place in the export order.
            ("prompt_id", STR),
            ("copies", pa.int32()),
            ("position", pa.int64()),
        ),
        key=("mix_id", "trace_id"),
        latest_wins=True,
    )
)

register_table(
    TableSpec(
        "runs",
        _schema(
            ("run_id", STR),
            ("stage", STR),
            ("status", STR),
            ("config", STR),
            ("started_at", TS),
            ("ended_at", TS),
            ("count_in", pa.int64()),
            ("count_out", pa.int64()),
            ("count_quarantined", pa.int64()),
            ("counts", STR),
            ("host", STR),
            ("pid", pa.int64()),
        ),
        key=("run_id",),
        latest_wins=True,
        json_columns=("config", "counts"),
    )
)

register_table(
    TableSpec(
        "quarantine",
        _schema(
            ("run_id", STR),
            ("source", STR),
            ("line", pa.int64()),
            ("field", STR),
            ("reason", STR),
            ("detail", STR),
            ("raw", STR),
        ),
        key=("run_id", "source", "line"),
        latest_wins=False,
    )
)
