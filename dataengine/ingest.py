"""Ingest: JSONL / JSON / Parquet / CSV / TSV / `datasets` folder / hub id → `prompts` or `traces`.

Every input row is either taken, skipped because its id is already stored (re-ingest, resume
after a kill), or quarantined with the file, line, field and reason. The run's counts reconcile:
``rows_in = taken + already_stored + quarantined``.

Canonical fields (`--map canonical=source_field`; a canonical field with no mapping is read from
the source field of the same name):

- both kinds: ``prompt`` (required), ``reference_answer``, ``domain``, ``language``, ``tests``
- traces: ``completion`` — a string, or a list of strings (n samples; other list fields of the same
  length are split alongside, so Sky-T1's ``score[i]`` lands on sample i); or ``reasoning`` plus
  ``answer`` in separate fields; or ``messages`` (the last assistant turn); plus ``model``,
  ``finish_reason``.

Every other field is kept in `metadata` (JSON; `metadata->>'field'` in SQL).
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import shutil
import tempfile
import time
import unicodedata
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataengine.config import section
from dataengine.readers import ByteRange, RowError, decode_jsonl_block, input_format, jsonl_blocks, read_rows
from dataengine.records import THINK_FORMATS, Prompt, Trace, split_completion, trace_id_for
from dataengine.schema import TABLES
from dataengine.store import Workspace, iter_batches, store_row_spans

Kind = Literal["traces", "prompts"]

TRACE_FIELDS = (
    "prompt", "completion", "reasoning", "answer", "messages", "reference_answer",
    "domain", "language", "model", "tests", "finish_reason",
)
PROMPT_FIELDS = ("prompt", "reference_answer", "domain", "language", "tests")


@section("ingest")
@dataclass
class IngestConfig:
    max_row_bytes: int = field(default=64 << 20, metadata={"help": "rows larger than this are quarantined (row_too_large)"})
    max_field_chars: int = field(default=8 << 20, metadata={"help": "a prompt or completion longer than this is quarantined (field_too_large)"})
    shard_rows: int = field(default=20_000, metadata={"help": "rows per Parquet shard written"})
    shard_bytes: int = field(default=128 << 20, metadata={"help": "text bytes per shard before it is flushed"})
    strict: bool = field(default=False, metadata={"help": "exit non-zero when any row is quarantined"})
    # On 2 cores the parent (assembling, Parquet) and 2 workers share the cores: `python
    # bench/bench_ingest.py --traces 20000` (410 MB, quiet machine) took 0.92x the wall time of one
    # process at 1.32x its CPU. Workers pay off only with a core of their own beside the parent's.
    workers: int = field(default=0, metadata={"help": "processes decoding large JSONL files (0: auto, one per core but the parent's on 4+ cores, none below)"})
    block_bytes: int = field(default=4 << 20, metadata={"help": "JSONL bytes handed to a worker at a time"})
    # Worker processes cost some CPU (their fork server imports this module, ~1 CPU-s, and each
    # block's tables pass through an Arrow IPC file): on a 410 MB R1-length file 2 workers took
    # ~1.0-1.3x the CPU-seconds of one process (loaded machine). Below this size one process is
    # the cheaper way.
    parallel_min_bytes: int = field(default=256 << 20, metadata={"help": "JSONL files smaller than this are read in-process (workers cost CPU; they only buy wall time)"})

    def validate(self) -> None:
        for name in ("shard_rows", "shard_bytes", "block_bytes", "max_row_bytes", "max_field_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")
        if self.parallel_min_bytes < 0:
            raise ValueError(f"parallel_min_bytes: must be >= 0, got {self.parallel_min_bytes}")
        if self.workers < 0:
            raise ValueError("workers must be >= 0")


@dataclass
class IngestOptions:
    """What one `dataengine ingest` call says about its file."""

    kind: Kind = "traces"
    mapping: dict[str, str] = field(default_factory=dict)
    domain: str | None = None  # default for rows without a domain field
    language: str | None = None
    model: str | None = None
    source: str | None = None  # defaults to the file name
    sampling_run: str | None = None  # part of trace ids; defaults to the source
    think_format: str = "auto"
    # Cut the completion after this marker (a chat template rendered into the completion).
    completion_after: str | None = None
    columns: list[str] | None = None  # header for headerless CSV/TSV
    split: str | None = None
    # Re-parse a file ingested before: its new rows supersede the old rows of the same source.
    replace: bool = False

    def __post_init__(self) -> None:
        allowed = TRACE_FIELDS if self.kind == "traces" else PROMPT_FIELDS
        for canonical in self.mapping:
            if canonical not in allowed:
                raise ValueError(f"--map {canonical}=…: unknown canonical field for {self.kind}; known: {', '.join(allowed)}")
        if self.think_format != "auto" and self.think_format not in THINK_FORMATS:
            raise ValueError(f"unknown think format {self.think_format!r}; known: auto, {', '.join(THINK_FORMATS)}")


@dataclass
class IngestReport:
    run_id: str
    source: str
    rows_in: int = 0
    taken: int = 0
    already_stored: int = 0
    quarantined: int = 0
    traces_written: int = 0
    prompts_written: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    # Prompts of this file whose reference disagrees with another source's (view reference_conflicts).
    reference_conflicts: int = 0
    # The file's think format when `auto` decided it for the whole file (None: per row).
    think_format: str | None = None
    # --replace: older rows of this source retired (their filter/verify rows with them).
    superseded: int = 0

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.taken + self.already_stored + self.quarantined

    def summary(self) -> str:
        q = ", ".join(f"{r}={n}" for r, n in self.reasons.most_common()) or "none"
        return (
            f"{self.source}: in={self.rows_in} = taken {self.taken} + already stored {self.already_stored} "
            f"+ quarantined {self.quarantined} ({q}); wrote {self.traces_written} traces, "
            f"{self.prompts_written} prompts in {self.seconds:.1f}s"
            + (f"; think format {self.think_format} (detected for the file)" if self.think_format else "")
            + (f"; replaced {self.superseded} earlier traces of this source (re-run filter and verify)"
               if self.superseded else "")
            + (f"; {self.reference_conflicts} prompts whose reference disagrees with another source "
               "(each trace keeps its own; see the reference_conflicts view)" if self.reference_conflicts else "")
        )


class _Reject(Exception):
    def __init__(self, reason: str, field_name: str | None, detail: str):
        super().__init__(detail)
        self.reason, self.field_name, self.detail = reason, field_name, detail


# Characters that render as nothing: invisible fillers outside the Cf/Z*/M* categories.
_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_visible_text(text: str) -> bool:
    """False for text of only whitespace, zero-width / format characters, marks and fillers."""
    for ch in text:
        if ch.isalnum() and ch.isascii():
            return True
        if ch in _INVISIBLE_EXTRA or ch.isspace():
            continue
        if unicodedata.category(ch)[0] not in "CZM":
            return True
    return False


def _text(row: dict[str, Any], key: str | None, canonical: str, *, required: bool = False) -> str | None:
    if key is None or key not in row or row[key] is None:
        if required:
            raise _Reject("missing_field", canonical, f"no field {key or canonical!r}")
        return None
    v = row[key]
    if isinstance(v, str):
        return v
    raise _Reject("wrong_type", canonical, f"field {key!r} is {type(v).__name__}, expected string")


def _scalar_text(row: dict[str, Any], key: str | None, canonical: str) -> str | None:
    """Reference answers arrive as strings, ints, floats (27.0) or lists; stored as text."""
    if key is None or row.get(key) is None:
        return None
    v = row[key]
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer():
            return str(int(v))
        return repr(v)
    if isinstance(v, (list, tuple)):
        return json.dumps(list(v), ensure_ascii=False)
    raise _Reject("wrong_type", canonical, f"field {key!r} is {type(v).__name__}, expected a string or number")


def _json_text(row: dict[str, Any], key: str | None) -> str | None:
    if key is None or row.get(key) is None:
        return None
    v = row[key]
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)


_TEXT_KEYS = ("text", "value", "content")


def _part_text(p: Any) -> str:
    if isinstance(p, dict):
        v = next((p[k] for k in _TEXT_KEYS if k in p), "")
        return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    return str(p)


def _parts(content: Any) -> list[tuple[str, str]]:
    """Message content as (type, text) parts: a string is one text part; typed parts keep their
    type (`text`, `reasoning`/`thinking`, `tool_call`, …)."""
    if isinstance(content, str):
        return [("text", content)]
    if isinstance(content, list):
        out = []
        for p in content:
            kind = str(p.get("type", "text")) if isinstance(p, dict) else "text"
            out.append(("reasoning" if kind in ("reasoning", "thinking") else kind, _part_text(p)))
        return out
    if content is None:
        return []
    raise _Reject("wrong_type", "messages", f"message content is {type(content).__name__}")


def _message_text(content: Any) -> str:
    """The visible text of a message: its text parts, separated by a blank line (never glued)."""
    return "\n\n".join(t for kind, t in _parts(content) if kind == "text" and t)


def _turn(m: dict[str, Any]) -> dict[str, Any]:
    """An earlier turn for `metadata.history`: role and visible text, plus its reasoning and tool
    calls when it had any (exports read role and content)."""
    parts = _parts(m.get("content"))
    turn: dict[str, Any] = {"role": m.get("role"), "content": _message_text(m.get("content"))}
    reasoning = [t for kind, t in parts if kind == "reasoning" and t]
    calls = [t for kind, t in parts if kind == "tool_call"]
    if reasoning:
        turn["reasoning"] = "\n\n".join(reasoning)
    if calls:
        turn["tool_calls"] = [_json_or_text(c) for c in calls]
    return turn


def _json_or_text(s: str) -> Any:
    try:
        return json.loads(s)
    except (json.JSONDecodeError, TypeError):
        return s


def _from_messages(msgs: Any) -> tuple[str, str, str | None, dict[str, Any]]:
    """(prompt, completion, system, metadata) from a chat.

    The prompt is the last user turn before the last assistant turn; the turns before it go to
    `metadata.history`. Everything after it is the assistant's work: reasoning parts become the
    think block, tool calls (with the tool's reply) go to `metadata.tool_calls`, and the last
    assistant turn's text is the answer.
    """
    if not isinstance(msgs, list) or not msgs:
        raise _Reject("wrong_type", "messages", "expected a non-empty list of {role, content}")
    roles = [m.get("role") if isinstance(m, dict) else None for m in msgs]
    if None in roles:
        raise _Reject("wrong_type", "messages", "every message needs a role")
    last_asst = max((i for i, r in enumerate(roles) if r == "assistant"), default=-1)
    if last_asst < 0:
        raise _Reject("missing_field", "messages", "no assistant message")
    users = [i for i in range(last_asst) if roles[i] == "user"]
    if not users:
        raise _Reject("missing_field", "messages", "no user message before the last assistant message")
    u = users[-1]
    system = next((_message_text(m.get("content")) for m in msgs if m.get("role") == "system"), None)
    meta: dict[str, Any] = {}
    history = [_turn(m) for m in msgs[:u] if m.get("role") != "system"]
    if history:
        meta["history"] = history
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for m in msgs[u + 1 : last_asst + 1]:
        parts = _parts(m.get("content"))
        if m.get("role") == "assistant":
            reasoning += [t for kind, t in parts if kind == "reasoning" and t]
            calls += [{"call": _json_or_text(t)} for kind, t in parts if kind == "tool_call"]
            if m is not msgs[last_asst]:
                # text an assistant wrote before calling a tool is part of its work, not the answer
                reasoning += [t for kind, t in parts if kind == "text" and t]
        elif m.get("role") == "tool" and calls:
            calls[-1]["result"] = _message_text(m.get("content"))
    if calls:
        meta["tool_calls"] = calls
    answer = _message_text(msgs[last_asst].get("content"))
    completion = f"<think>\n{chr(10).join(reasoning)}\n</think>\n\n{answer}" if reasoning else answer
    return _message_text(msgs[u].get("content")), completion, system, meta


@dataclass
class Block:
    """What mapping a block of input rows yields, in input order: rows as dicts (`mapped`), then
    as Arrow tables (`columnar`), the form that crosses from a worker process and is written."""

    rows_in: int = 0
    # One entry per input row that mapped cleanly: (line, prompt row, [trace rows without ids]).
    mapped: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    # Columnar form: one prompt row per mapped input row, and that row's `n_traces` trace rows
    # (sample_idx and trace_id unset: they depend on the rows before the block).
    prompts: pa.Table | None = None
    traces: pa.Table | None = None
    n_traces: list[int] = field(default_factory=list)

    # Where a worker left the tables (Arrow IPC files, `<spilled>.prompts.arrow` / `.traces.arrow`).
    spilled: str | None = None

    def columnar(self, kind: Kind) -> Block:
        """This block with its mapped rows as Arrow tables (and no dicts: a worker pickles
        Arrow buffers, not 20 KB strings inside dicts)."""
        if self.spilled is not None:
            return self._load(kind)
        if self.prompts is not None:
            return self
        traces = [t for _line, _p, ts in self.mapped for t in ts] if kind == "traces" else []
        return Block(
            self.rows_in, [], self.quarantine, self.reasons,
            prompts=_arrow_rows("prompts", [p for _line, p, _ts in self.mapped]),
            traces=_arrow_rows("traces", traces) if kind == "traces" else None,
            n_traces=[len(ts) for _line, _p, ts in self.mapped] if kind == "traces" else [],
        )

    def spill(self, stem: Path) -> Block:
        """The block with its tables written to Arrow IPC files beside `stem`, for the parent to
        memory-map: pickling them through a pipe cost ~2.5x the CPU (the bytes copied four times)."""
        for name, tbl in (("prompts", self.prompts), ("traces", self.traces)):
            if tbl is not None:
                with pa.OSFile(f"{stem}.{name}.arrow", "wb") as f, pa.ipc.new_stream(f, tbl.schema) as w:
                    w.write_table(tbl)
        return replace(self, prompts=None, traces=None, spilled=str(stem))

    def _load(self, kind: Kind) -> Block:
        tables: dict[str, pa.Table | None] = {"prompts": None, "traces": None}
        for name in ("prompts", "traces") if kind == "traces" else ("prompts",):
            path = f"{self.spilled}.{name}.arrow"
            with pa.memory_map(path) as src:
                tables[name] = pa.ipc.open_stream(src).read_all()
            os.unlink(path)  # the mapping stays valid until the tables are written and dropped
        return replace(self, spilled=None, **tables)


def _arrow_rows(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of `table` (its schema but `written_at`, which the store sets) as an Arrow table."""
    schema = pa.schema([f for f in TABLES[table].schema if f.name != "written_at"])
    return pa.Table.from_arrays([_arrow_column([r.get(f.name) for r in rows], f.type) for f in schema], schema=schema)


# Arrow arrays are built from buffers here, not with `pa.array`: on its first call pyarrow
# imports pandas (0.45 CPU-s, paid again by every worker process), and on text with
# non-Latin-1 characters (an R1 trace) its conversion of `str` costs ~5x an `encode`.
_NUMPY_TYPES = {pa.int32(): (np.int32, int), pa.int64(): (np.int64, int), pa.float64(): (np.float64, float),
                pa.bool_(): (np.bool_, bool)}


def _arrow_column(values: list[Any], typ: pa.DataType) -> pa.Array:
    """`pa.array(values, typ)` for the column types of prompts and traces."""
    n = len(values)
    valid = np.fromiter((v is not None for v in values), np.bool_, n)
    nulls = n - int(valid.sum())
    bitmap = None if not nulls else pa.py_buffer(np.packbits(valid, bitorder="little"))
    if typ == pa.string():
        try:
            encoded = [b"" if v is None else v.encode("utf-8") for v in values]
        except (AttributeError, UnicodeEncodeError):
            return pa.array(values, typ)  # not all strings: pyarrow's conversion (or its error)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(np.fromiter(map(len, encoded), np.int64, n), out=offsets[1:])
        if offsets[-1] > np.iinfo(np.int32).max:
            return pa.array(values, typ)  # over 2 GB: pyarrow splits it into chunks
        return pa.Array.from_buffers(typ, n, [bitmap, pa.py_buffer(offsets.astype(np.int32)),
                                              pa.py_buffer(b"".join(encoded))], null_count=nulls)
    dtype, pytype = _NUMPY_TYPES.get(typ, (None, None))
    if dtype is None or any(v is not None and type(v) is not pytype for v in values):
        return pa.array(values, typ)  # a value of another Python type: pyarrow converts (or refuses)
    data = np.array([0 if v is None else v for v in values], dtype)
    if typ == pa.bool_():
        data = np.packbits(data, bitorder="little")
    return pa.Array.from_buffers(typ, n, [bitmap, pa.py_buffer(data)], null_count=nulls)


def _int_array(values: list[int], typ: pa.DataType | None = None) -> pa.Array:
    return _arrow_column(values, typ or pa.int64())  # type: ignore[arg-type]


@dataclass
class RowMapper:
    """Maps one input row to a prompt row and its trace rows. Pure and picklable: worker processes
    run it on blocks of lines, while ids that depend on file order are assigned by `Assembler`."""

    opts: IngestOptions
    cfg: IngestConfig
    source: str
    path: str
    run_id: str

    def __post_init__(self) -> None:
        allowed = TRACE_FIELDS if self.opts.kind == "traces" else PROMPT_FIELDS
        # canonical -> source key; identity for canonical fields that are not remapped.
        self.keys: dict[str, str] = {c: self.opts.mapping.get(c, c) for c in allowed}
        self.consumed = set(self.keys.values())
        # Fields read only when `completion` is absent: a row with a completion keeps them in
        # metadata (Sky-T1's clean `answer` is not the completion's answer part).
        self.fallback_only = {self.keys[c] for c in ("reasoning", "answer", "messages") if c in self.keys}

    def map_items(self, items: Iterable[tuple[int, dict[str, Any] | RowError]]) -> Block:
        out = Block()
        for line, row in items:
            out.rows_in += 1
            if isinstance(row, RowError):
                self._reject(out, line, row.reason, row.field, row.detail, row.raw)
                continue
            try:
                prompt, traces = self.map_row(row)
            except _Reject as r:
                self._reject(out, line, r.reason, r.field_name, r.detail, _raw_json(row))
                continue
            out.mapped.append((line, prompt, traces))
        return out

    def _reject(self, out: Block, line: int, reason: str, field_name: str | None, detail: str, raw: str | None) -> None:
        out.reasons[reason] += 1
        out.quarantine.append(
            {"run_id": self.run_id, "source": self.path, "line": line, "field": field_name,
             "reason": reason, "detail": detail, "raw": raw}
        )

    def map_row(self, row: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if self.opts.kind == "prompts":
            p = self._prompt(row)
            p.metadata = self._metadata(row)
            return self._prompt_row(p), []
        k = self.keys
        system = None
        prompt_text = None
        chat_meta: dict[str, Any] = {}
        if k["messages"] in row and row.get(k["completion"]) is None and k["messages"] != k["completion"]:
            prompt_text, completion, system, chat_meta = _from_messages(row[k["messages"]])
            completions = [completion]
        else:
            completions = self._completions(row)
        for completion in completions:
            if len(completion) > self.cfg.max_field_chars:
                raise _Reject("field_too_large", "completion",
                              f"{len(completion)} chars > max_field_chars={self.cfg.max_field_chars}")
        prompt = self._prompt(row, prompt_text)
        model = _text(row, k["model"], "model") or self.opts.model or "unknown"
        finish = _text(row, k["finish_reason"], "finish_reason")
        n = len(completions)
        is_list = isinstance(row.get(k["completion"]), list)
        unused = self.fallback_only - {k["completion"]} if row.get(k["completion"]) is not None else set()
        traces = []
        for i, completion in enumerate(completions):
            rendered = None
            if self.opts.completion_after:
                cut = completion.find(self.opts.completion_after)
                if cut >= 0:
                    rendered = completion[: cut + len(self.opts.completion_after)]
                    completion = completion[cut + len(self.opts.completion_after) :]
            meta = self._metadata(row, i if is_list else None, n if is_list else None, keep=unused)
            if system is not None:
                meta["system"] = system
            meta.update(chat_meta)
            if prompt.reference_answer is not None:
                # The trace's own reference: the prompt row keeps the first file's, and a later
                # file that disagrees must still be graded against its own (view reference_conflicts).
                meta["reference_answer"] = prompt.reference_answer
            # sample_idx and trace_id depend on what came before in the file: the Assembler sets them.
            t = Trace(
                prompt_id=prompt.prompt_id, completion=completion, model=model,
                sampling_run=self.opts.sampling_run or self.source, engine="ingest", source=self.source,
                domain=prompt.domain, language=prompt.language, rendered_prompt=rendered,
                think_format=self.opts.think_format, finish_reason=finish, run_id=self.run_id,
                metadata=meta, trace_id="-",
            )
            # Spans computed here, in the worker: the completion alone travels back (issue 15).
            traces.append(store_row_spans("traces", t.to_row()))
        return self._prompt_row(prompt), traces

    def _prompt_row(self, p: Prompt) -> dict[str, Any]:
        row = p.to_row()
        row["run_id"] = self.run_id
        return row

    def _prompt(self, row: dict[str, Any], prompt_text: str | None = None) -> Prompt:
        k = self.keys
        text = prompt_text if prompt_text is not None else _text(row, k["prompt"], "prompt", required=True)
        assert text is not None
        if not has_visible_text(text):
            raise _Reject("empty_prompt", "prompt", f"prompt has no visible character ({len(text)} characters of "
                          "whitespace, zero-width or format characters)" if text else "prompt is empty")
        if len(text) > self.cfg.max_field_chars:
            raise _Reject("field_too_large", "prompt", f"{len(text)} chars > max_field_chars={self.cfg.max_field_chars}")
        return Prompt(
            prompt=text,
            source=self.source,
            domain=_text(row, k["domain"], "domain") or self.opts.domain or "general",
            language=_text(row, k["language"], "language") or self.opts.language,
            reference_answer=_scalar_text(row, k["reference_answer"], "reference_answer"),
            tests=_json_text(row, k["tests"]),
        )

    def _metadata(self, row: dict[str, Any], index: int | None = None, n: int | None = None,
                  keep: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
        meta = {}
        for key, v in row.items():
            if key in self.consumed and key not in keep:
                continue
            if index is not None and isinstance(v, list) and len(v) == n:
                v = v[index]
            meta[key] = v
        return meta

    def _completions(self, row: dict[str, Any]) -> list[str]:
        k = self.keys
        key = k["completion"]
        v = row.get(key)
        if v is None:
            reasoning = _text(row, k["reasoning"], "reasoning")
            answer = _text(row, k["answer"], "answer")
            if reasoning is None and answer is None:
                raise _Reject("missing_field", "completion", f"no field {key!r} (nor reasoning/answer fields)")
            # Separate fields are joined in the canonical `<think>` format, so every later stage
            # sees one shape of completion.
            return [f"<think>\n{reasoning or ''}\n</think>\n\n{answer or ''}"]
        if isinstance(v, str):
            return [v]
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            return v
        if isinstance(v, list) and not v:
            raise _Reject("empty_completion", "completion", f"field {key!r} is an empty list")
        raise _Reject("wrong_type", "completion", f"field {key!r} is {type(v).__name__}, expected a string or list of strings")


def map_jsonl_block(mapper: RowMapper, data: bytes | ByteRange, first_line: int, spill_dir: str | None = None) -> Block:
    """Worker-process entry: decode and map one block of JSONL lines (its bytes, or where they lie
    in the mapper's file), returned as Arrow tables (in `spill_dir`, when given: see `Block.spill`)."""
    if isinstance(data, ByteRange):
        data = data.read()
    block = mapper.map_items(decode_jsonl_block(data, first_line, mapper.cfg.max_row_bytes))
    block = block.columnar(mapper.opts.kind)
    if spill_dir:
        try:
            return block.spill(Path(spill_dir) / f"{first_line}")
        except OSError:  # no room in the temp dir: the tables are pickled back instead (more CPU)
            for name in ("prompts", "traces"):
                with contextlib.suppress(OSError):
                    os.unlink(Path(spill_dir) / f"{first_line}.{name}.arrow")
    return block


class Assembler:
    """Takes mapped blocks in file order, assigns sample indexes and trace ids, skips ids already
    stored, and writes shards (on a background thread, so Parquet encoding overlaps parsing).

    Blocks arrive as Arrow tables: the per-row work here touches only ids and lengths, and the
    taken rows are cut from the block's tables, never rebuilt from Python objects."""

    def __init__(self, ws: Workspace, kind: Kind, cfg: IngestConfig, report: IngestReport, replace: bool = False):
        self.ws, self.kind, self.cfg, self.report = ws, kind, cfg, report
        # replace: nothing counts as stored, every row is written again (the old ones are retired
        # by `supersede` once this run has written all of its rows).
        self.stored_traces = ws.existing_ids("traces", "trace_id") if kind == "traces" and not replace else set()
        self.stored_prompts = ws.existing_ids("prompts", "prompt_id") if not replace else set()
        self.sample_counter: Counter[tuple[str, str]] = Counter()
        self._traces: list[pa.Table] = []
        self._prompts: list[pa.Table] = []
        self._quarantine: list[dict[str, Any]] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer")
        self._inflight: Future[None] | None = None

    def add(self, block: Block) -> None:
        r = self.report
        block = block.columnar(self.kind)
        assert block.prompts is not None
        r.rows_in += block.rows_in
        r.quarantined += len(block.quarantine)
        r.reasons.update(block.reasons)
        self._quarantine.extend(block.quarantine)
        traces = self.kind == "traces"
        pids = block.prompts.column("prompt_id").to_pylist()
        plens = pc.utf8_length(block.prompts.column("prompt")).to_pylist()
        if traces:
            assert block.traces is not None
            t_pid, t_model, t_run = (block.traces.column(c).to_pylist() for c in ("prompt_id", "model", "sampling_run"))
            clens = pc.utf8_length(block.traces.column("completion")).to_pylist()
        take_p: list[int] = []
        take_t: list[int] = []
        sample_idx: list[int] = []
        trace_ids: list[str] = []
        first = 0  # the block's first trace row of input row i
        for i, pid in enumerate(pids):
            added = False
            if pid not in self.stored_prompts:
                self.stored_prompts.add(pid)
                take_p.append(i)
                self._pending_rows += 1
                self._pending_bytes += plens[i]
                r.prompts_written += 1
                added = True
            if traces:
                added = False
                n = block.n_traces[i]
                for j in range(first, first + n):
                    key = (t_pid[j], t_model[j])
                    idx = self.sample_counter[key]
                    self.sample_counter[key] += 1
                    tid = trace_id_for(t_pid[j], idx, t_model[j], t_run[j])
                    if tid in self.stored_traces:
                        continue
                    self.stored_traces.add(tid)
                    take_t.append(j)
                    sample_idx.append(idx)
                    trace_ids.append(tid)
                    self._pending_rows += 1
                    self._pending_bytes += clens[j]
                    r.traces_written += 1
                    added = True
                first += n
            if added:
                r.taken += 1
            else:
                r.already_stored += 1
            if self._pending_rows >= self.cfg.shard_rows or self._pending_bytes >= self.cfg.shard_bytes:
                self._stage(block, take_p, take_t, sample_idx, trace_ids)
                take_p, take_t, sample_idx, trace_ids = [], [], [], []
                self.flush()
        self._stage(block, take_p, take_t, sample_idx, trace_ids)

    def _stage(self, block: Block, take_p: list[int], take_t: list[int], sample_idx: list[int], trace_ids: list[str]) -> None:
        """Queue the taken rows of `block` for the next shard, with their sample indexes and ids."""
        if take_p:
            assert block.prompts is not None
            self._prompts.append(_rows(block.prompts, take_p))
        if take_t:
            assert block.traces is not None
            t = _rows(block.traces, take_t)
            at = t.schema.get_field_index
            t = t.set_column(at("sample_idx"), "sample_idx", _int_array(sample_idx, pa.int32()))
            t = t.set_column(at("trace_id"), "trace_id", _arrow_column(trace_ids, pa.string()))
            self._traces.append(t)

    def flush(self) -> None:
        batch = (self._prompts, self._traces, self._quarantine)
        self._prompts, self._traces, self._quarantine = [], [], []
        self._pending_rows = self._pending_bytes = 0
        self.wait()  # at most one shard set in flight: bounded memory
        self._inflight = self._writer.submit(self._write, *batch)

    def _write(self, prompts: list[pa.Table], traces: list[pa.Table], quarantine: list[dict[str, Any]]) -> None:
        # Prompts first: a kill between the writes leaves prompts without traces (re-used on
        # rerun), never traces without their prompt rows.
        if prompts:
            self.ws.write_shard("prompts", pa.concat_tables(prompts))
        if traces:
            self.ws.write_shard("traces", pa.concat_tables(traces))
        if quarantine:
            self.ws.write_shard("quarantine", quarantine)

    def wait(self) -> None:
        if self._inflight is not None:
            self._inflight.result()
            self._inflight = None

    def close(self) -> None:
        self.flush()
        self.wait()
        self._writer.shutdown()


def _rows(tbl: pa.Table, rows: list[int]) -> pa.Table:
    """The rows of `tbl` at the (ascending) indexes `rows`: a zero-copy slice when they are a
    run, as they are unless ids were already stored (copying 20 KB texts costs CPU)."""
    if rows[-1] - rows[0] + 1 == len(rows):
        return tbl.slice(rows[0], len(rows))
    return tbl.take(_int_array(rows))


def _raw_json(row: dict[str, Any]) -> str:
    text = json.dumps(row, ensure_ascii=False, default=str)
    return text if len(text) <= (1 << 20) else text[: 1 << 20] + "…[truncated]"


def ingest(
    ws: Workspace,
    path: str | Path,
    opts: IngestOptions | None = None,
    cfg: IngestConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest one file into the workspace; returns the reconciled report.

    Large JSONL files are decoded and mapped by `cfg.workers` processes in blocks, in order;
    other formats are mapped in this process. `progress`, when given, is called with the number
    of input rows handled so far (the CLI draws a bar with it).
    """
    opts = opts or IngestOptions()
    cfg = cfg or IngestConfig()
    cfg.validate()  # a config built in code (not loaded) is checked too
    path = Path(path)
    fmt = input_format(path)
    if fmt != "hub" and not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    # Two ingests of one file would both take every row: the second waits for the file's lease,
    # then finds every id stored.
    key = str(path.resolve()) if fmt != "hub" else str(path)
    with ws.lease(f"ingest:{key}"):
        return _ingest(ws, path, fmt, opts, cfg, progress)


def _ingest(ws: Workspace, path: Path, fmt: str, opts: IngestOptions, cfg: IngestConfig,
            progress: Callable[[int], None] | None) -> IngestReport:
    config = {"path": str(path), "format": fmt, "options": asdict(opts), "ingest": asdict(cfg)}
    run = ws.start_run("ingest", config)
    t0 = time.perf_counter()
    source = opts.source or path.name
    report = IngestReport(run.run_id, source)
    mapper = RowMapper(opts, cfg, source, str(path), run.run_id)
    asm = Assembler(ws, opts.kind, cfg, report, replace=opts.replace)
    try:
        # Inside the try: a file that cannot be read (a corrupt Parquet) fails here, recorded failed.
        head = None
        if opts.think_format == "auto" and fmt != "hub":
            detected, head = _detect_head(path, mapper, cfg, opts)
            if detected is not None:
                report.think_format = detected
                opts = replace(opts, think_format=detected)
                mapper = RowMapper(opts, cfg, source, str(path), run.run_id)
                head.resplit(detected)
        for block in _mapped_blocks(path, fmt, mapper, cfg, opts, head):
            asm.add(block)
            if progress is not None:
                progress(report.rows_in)
        asm.close()
    except BaseException:
        try:
            asm.close()  # keep what was read: a rerun then skips it
        finally:  # even when that write fails too (a full disk): the run is recorded failed
            run.finish({"in": report.rows_in, "out": report.taken, "quarantined": report.quarantined}, status="failed")
        raise
    if opts.replace and opts.kind == "traces":
        report.superseded = supersede(ws, source, run.run_id)
    report.seconds = time.perf_counter() - t0
    report.bytes_read = path.stat().st_size if path.is_file() else 0
    assert report.reconciles, report  # a bug in this module, not in the input
    if report.taken:
        report.reference_conflicts = ws.query(
            "select count(*) from reference_conflicts where list_contains(sources, $s)", {"s": source}).fetchone()[0]
    run.finish(
        {"in": report.rows_in, "out": report.taken, "quarantined": report.quarantined,
         "already_stored": report.already_stored, "traces_written": report.traces_written,
         "reference_conflicts": report.reference_conflicts, "think_format_detected": report.think_format,
         "superseded": report.superseded,
         "prompts_written": report.prompts_written, **{f"reason:{k}": v for k, v in report.reasons.items()}}
    )
    return report


# Rows computed from a trace's parse: stale once the trace is re-parsed, so they go with it.
_DERIVED = ("filter_results", "verifications")


def supersede(ws: Workspace, source: str, run_id: str) -> int:
    """Retire the rows of `source` that runs other than `run_id` wrote to `traces` (and their
    filter / verify rows); returns how many traces were retired.

    A shard is rewritten in place without those rows (written beside and renamed, so a reader
    sees the old shard or the new one, never half of one). Called after the new rows are all
    written: a failure before this point leaves old and new rows, never neither.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    retired: set[str] = set()
    for shard in ws.shards("traces"):
        meta = pq.read_table(shard, columns=["source", "run_id", "trace_id"])
        old = pc.and_(pc.equal(meta["source"], source), pc.not_equal(meta["run_id"], run_id))
        old = pc.fill_null(old, False)
        n_old = pc.sum(old).as_py() or 0
        if not n_old:
            continue
        retired.update(meta.filter(old)["trace_id"].to_pylist())
        ws._write_atomic(pq.read_table(shard).filter(pc.invert(old)), shard)
    if retired:
        ids = pa.array(sorted(retired), pa.string())
        for table in _DERIVED:
            for shard in ws.shards(table):
                tbl = pq.read_table(shard)
                hit = pc.is_in(tbl["trace_id"], value_set=ids)
                if pc.any(hit).as_py():
                    ws._write_atomic(tbl.filter(pc.invert(hit)), shard)
    return len(retired)


def detect_file_think_format(path: Path, mapper: RowMapper, cfg: IngestConfig, opts: IngestOptions,
                             sample_rows: int = 2000) -> str | None:
    """The think format of a whole file, from its first `sample_rows` rows; None: decide per row.

    A file whose finished rows close `</think>` and none opens it was generated with `<think>`
    in the prompt: every row is prompt-opened, the truncated ones (no marker at all) included,
    which row by row would read as `none` (a short answer with no reasoning).
    """
    detected, head = _detect_head(path, mapper, cfg, opts, sample_rows)
    head.close()
    return detected


@dataclass
class _Head:
    """The first rows of a file, mapped while detecting its think format: the main pass starts
    after them instead of reading and mapping them a second time."""

    block: Block
    last_line: int  # the line of the last row it holds (0: none)
    rest: Iterator[tuple[int, Any]]  # the reader, open after those rows

    def close(self) -> None:
        close = getattr(self.rest, "close", None)
        if close is not None:
            close()

    def resplit(self, think_format: str) -> None:
        """Re-split the traces as a mapper of `think_format` would have (only the split depends on it)."""
        for _line, _prompt, traces in self.block.mapped:
            for t in traces:
                s = split_completion(t["completion"], think_format)
                t.update(reasoning=s.reasoning, answer=s.answer, think_closed=s.think_closed, think_format=s.think_format)
                store_row_spans("traces", t)


def _detect_head(path: Path, mapper: RowMapper, cfg: IngestConfig, opts: IngestOptions,
                 sample_rows: int = 2000) -> tuple[str | None, _Head]:
    items = read_rows(path, max_row_bytes=cfg.max_row_bytes, columns=opts.columns, split=opts.split)
    seen: Counter[str] = Counter()
    try:
        taken = list(islice(items, sample_rows))
        block = mapper.map_items(taken)
    except BaseException:
        close = getattr(items, "close", None)
        if close is not None:
            close()
        raise
    for _line, _prompt, traces in block.mapped:
        seen.update(t["think_format"] for t in traces)
    # The reader stays open: the in-process main pass goes on from where detection stopped.
    head = _Head(block, taken[-1][0] if taken else 0, items)
    if seen["prompt_opened"] and not seen["think"] and not seen["sky_t1"]:
        return "prompt_opened", head
    return None, head


def _mapped_blocks(path: Path, fmt: str, mapper: RowMapper, cfg: IngestConfig, opts: IngestOptions,
                   head: _Head | None = None) -> Iterator[Block]:
    """Mapped blocks in file order: from worker processes for big JSONL files, else in-process.
    `head`: the file's first rows, already mapped (think format detection)."""
    if head is not None:
        yield head.block
    workers = cfg.workers or auto_workers()
    if fmt == "jsonl" and workers > 1 and path.stat().st_size >= cfg.parallel_min_bytes:
        if head is not None:
            head.close()
        yield from _parallel_jsonl(path, mapper, cfg, workers, head.last_line if head is not None else 0)
        return
    if head is not None:
        items = head.rest
    else:
        items = read_rows(path, max_row_bytes=cfg.max_row_bytes, columns=opts.columns, split=opts.split)
    try:
        for chunk in iter_batches(items, 2000):
            yield mapper.map_items(chunk)
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


def auto_workers(cores: int | None = None) -> int:
    """Ingest worker processes when `workers` is 0: one per core but the parent's, from 4 cores
    on; below that, one process (see `IngestConfig.workers`)."""
    cores = cores or os.cpu_count() or 1
    return cores - 1 if cores >= 4 else 1


def _parallel_jsonl(path: Path, mapper: RowMapper, cfg: IngestConfig, workers: int, after_line: int = 0) -> Iterator[Block]:
    """`after_line`: lines up to it are already mapped (a `_Head`), so they are not read again."""
    # Not fork: the parent may hold threads (the shard writer, a Prefect runner). A fork server
    # (the one verify's pool starts, shared by the process) imports this module once; spawn made
    # each worker import it again (~0.9 CPU-s per worker, a quarter of the work on 160 MB).
    from multiprocessing import forkserver

    from dataengine.verify.pool import _start_forkserver

    ours = getattr(forkserver._forkserver, "_forkserver_pid", None) is None
    _start_forkserver(f"{__name__}:map_jsonl_block", None)
    ctx = mp.get_context("forkserver")
    pending: deque[Future[Block]] = deque()
    spill = tempfile.mkdtemp(prefix="dataengine-ingest-")
    with contextlib.ExitStack() as cleanup, ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        # Run after the pool has shut down. A fork server this call started is stopped: a later
        # stage of this process (verify) starts its own with its modules preloaded, and the
        # server's CPU (and its workers') is reaped into this process's children.
        if ours and hasattr(forkserver._forkserver, "_stop"):
            cleanup.callback(forkserver._forkserver._stop)
        cleanup.callback(shutil.rmtree, spill, ignore_errors=True)  # no worker writes there any more
        # Workers read their blocks from the file themselves: only (offset, size) is pickled to them.
        for item in jsonl_blocks(path, cfg.block_bytes, cfg.max_row_bytes, ranges=True):
            if isinstance(item[0], int) and item[0] <= after_line:
                continue  # an oversized line the head holds
            if isinstance(item[0], (bytes, ByteRange)):
                data, first = item
                if first <= after_line:
                    if isinstance(data, ByteRange):
                        data = data.read().rstrip(b"\n")
                    lines = data.split(b"\n")
                    if first + len(lines) - 1 <= after_line:
                        continue
                    data, first = b"\n".join(lines[after_line - first + 1 :]), after_line + 1
                pending.append(pool.submit(map_jsonl_block, mapper, data, first, spill))
            else:  # an oversized line, already a RowError: keep its place in the order
                done: Future[Block] = Future()
                done.set_result(mapper.map_items([item]))  # type: ignore[list-item]
                pending.append(done)
            # Bounded read-ahead: at most 2 blocks per worker decoded but not yet written.
            while len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


