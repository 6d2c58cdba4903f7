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

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dataengine.config import section
from dataengine.readers import RowError, input_format, read_rows
from dataengine.records import THINK_FORMATS, Prompt, Trace, trace_id_for
from dataengine.store import Run, Workspace

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

    def validate(self) -> None:
        if self.shard_rows < 1 or self.shard_bytes < 1:
            raise ValueError("shard_rows and shard_bytes must be positive")


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

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.taken + self.already_stored + self.quarantined

    def summary(self) -> str:
        q = ", ".join(f"{r}={n}" for r, n in self.reasons.most_common()) or "none"
        return (
            f"{self.source}: in={self.rows_in} = taken {self.taken} + already stored {self.already_stored} "
            f"+ quarantined {self.quarantined} ({q}); wrote {self.traces_written} traces, "
            f"{self.prompts_written} prompts in {self.seconds:.1f}s"
        )


class _Reject(Exception):
    def __init__(self, reason: str, field_name: str | None, detail: str):
        super().__init__(detail)
        self.reason, self.field_name, self.detail = reason, field_name, detail


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


def _message_text(content: Any) -> str:
    """Message content as text: a string, or a list of parts ({type: text, text|value})."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict):
                parts.append(str(p.get("text", p.get("value", p.get("content", "")))))
            else:
                parts.append(str(p))
        return "".join(parts)
    raise _Reject("wrong_type", "messages", f"message content is {type(content).__name__}")


def _from_messages(msgs: Any) -> tuple[str, str, str | None]:
    """(prompt, completion, system) from a chat: the user turn before the last assistant turn."""
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
    system = next((_message_text(m.get("content")) for m in msgs if m.get("role") == "system"), None)
    return _message_text(msgs[users[-1]].get("content")), _message_text(msgs[last_asst].get("content")), system


class Ingester:
    """Turns rows into `Prompt`/`Trace` rows and flushes them in shards. One per ingest call."""

    def __init__(self, ws: Workspace, path: Path, opts: IngestOptions, cfg: IngestConfig, run: Run):
        self.ws, self.path, self.opts, self.cfg, self.run = ws, path, opts, cfg, run
        self.source = opts.source or path.name
        self.sampling_run = opts.sampling_run or self.source
        self.report = IngestReport(run.run_id, self.source)
        self.stored_traces = ws.existing_ids("traces", "trace_id") if opts.kind == "traces" else set()
        self.stored_prompts = ws.existing_ids("prompts", "prompt_id")
        self.sample_counter: Counter[tuple[str, str]] = Counter()
        self._traces: list[dict[str, Any]] = []
        self._prompts: list[dict[str, Any]] = []
        self._quarantine: list[dict[str, Any]] = []
        self._pending_bytes = 0
        allowed = TRACE_FIELDS if opts.kind == "traces" else PROMPT_FIELDS
        # canonical -> source key; identity for canonical fields that are not remapped.
        self.keys: dict[str, str] = {c: opts.mapping.get(c, c) for c in allowed}
        self.consumed = set(self.keys.values())

    # ------------------------------------------------------------------ per row
    def take(self, line: int, row: dict[str, Any] | RowError) -> None:
        self.report.rows_in += 1
        if isinstance(row, RowError):
            self._reject(line, row.reason, row.field, row.detail, row.raw)
            return
        try:
            if self.opts.kind == "traces":
                added = self._take_trace_row(row)
            else:
                added = self._take_prompt_row(row)
        except _Reject as r:
            self._reject(line, r.reason, r.field_name, r.detail, _raw_json(row))
            return
        if added:
            self.report.taken += 1
        else:
            self.report.already_stored += 1
        if len(self._traces) + len(self._prompts) >= self.cfg.shard_rows or self._pending_bytes >= self.cfg.shard_bytes:
            self.flush()

    def _reject(self, line: int, reason: str, field_name: str | None, detail: str, raw: str | None) -> None:
        self.report.quarantined += 1
        self.report.reasons[reason] += 1
        self._quarantine.append(
            {"run_id": self.run.run_id, "source": str(self.path), "line": line, "field": field_name,
             "reason": reason, "detail": detail, "raw": raw}
        )
        self._pending_bytes += len(raw or "")

    def _prompt_fields(self, row: dict[str, Any], prompt_text: str | None = None) -> Prompt:
        k = self.keys
        text = prompt_text if prompt_text is not None else _text(row, k["prompt"], "prompt", required=True)
        assert text is not None
        if not text.strip():
            raise _Reject("empty_prompt", "prompt", "prompt is empty or whitespace")
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

    def _metadata(self, row: dict[str, Any], index: int | None = None, n: int | None = None) -> dict[str, Any]:
        meta = {}
        for key, v in row.items():
            if key in self.consumed:
                continue
            if index is not None and isinstance(v, list) and len(v) == n:
                v = v[index]
            meta[key] = v
        return meta

    def _add_prompt(self, p: Prompt) -> None:
        if p.prompt_id in self.stored_prompts:
            return
        self.stored_prompts.add(p.prompt_id)
        row = p.to_row()
        row["run_id"] = self.run.run_id
        self._prompts.append(row)
        self._pending_bytes += len(p.prompt)
        self.report.prompts_written += 1

    def _take_prompt_row(self, row: dict[str, Any]) -> bool:
        p = self._prompt_fields(row)
        p.metadata = self._metadata(row)
        if p.prompt_id in self.stored_prompts:
            return False
        self._add_prompt(p)
        return True

    def _take_trace_row(self, row: dict[str, Any]) -> bool:
        k = self.keys
        system = None
        prompt_text = None
        if k["messages"] in row and row.get(k["completion"]) is None and k["messages"] != k["completion"]:
            prompt_text, completion, system = _from_messages(row[k["messages"]])
            completions: list[str] = [completion]
        else:
            completions = self._completions(row)
        prompt = self._prompt_fields(row, prompt_text)
        model = _text(row, k["model"], "model") or self.opts.model or "unknown"
        finish = _text(row, k["finish_reason"], "finish_reason")
        rendered = None
        n = len(completions)
        is_list = isinstance(row.get(k["completion"]), list)
        added_any = False
        for completion in completions:
            if len(completion) > self.cfg.max_field_chars:
                raise _Reject("field_too_large", "completion", f"{len(completion)} chars > max_field_chars={self.cfg.max_field_chars}")
        base = self.sample_counter[(prompt.prompt_id, model)]
        self.sample_counter[(prompt.prompt_id, model)] += n
        self._add_prompt(prompt)
        for i, completion in enumerate(completions):
            if self.opts.completion_after:
                cut = completion.find(self.opts.completion_after)
                if cut >= 0:
                    rendered = completion[: cut + len(self.opts.completion_after)]
                    completion = completion[cut + len(self.opts.completion_after) :]
            sample_idx = base + i
            trace_id = trace_id_for(prompt.prompt_id, sample_idx, model, self.sampling_run)
            if trace_id in self.stored_traces:
                continue
            meta = self._metadata(row, i if is_list else None, n if is_list else None)
            if system is not None:
                meta["system"] = system
            t = Trace(
                prompt_id=prompt.prompt_id,
                completion=completion,
                sample_idx=sample_idx,
                model=model,
                sampling_run=self.sampling_run,
                engine="ingest",
                source=self.source,
                domain=prompt.domain,
                language=prompt.language,
                rendered_prompt=rendered,
                think_format=self.opts.think_format,
                finish_reason=finish,
                run_id=self.run.run_id,
                metadata=meta,
                trace_id=trace_id,
            )
            self.stored_traces.add(trace_id)
            self._traces.append(t.to_row())
            self._pending_bytes += len(completion)
            self.report.traces_written += 1
            added_any = True
        return added_any

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

    # ------------------------------------------------------------------ output
    def flush(self) -> None:
        # Prompts first: a kill between the two writes leaves prompts without traces (harmless,
        # re-used on rerun), never traces without their prompt rows.
        if self._prompts:
            self.ws.write_shard("prompts", self._prompts)
        if self._traces:
            self.ws.write_shard("traces", self._traces)
        if self._quarantine:
            self.ws.write_shard("quarantine", self._quarantine)
        self._prompts, self._traces, self._quarantine = [], [], []
        self._pending_bytes = 0


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

    `progress`, when given, is called with the number of input rows handled so far, every few
    thousand rows (the CLI draws a bar with it).
    """
    opts = opts or IngestOptions()
    cfg = cfg or IngestConfig()
    path = Path(path)
    fmt = input_format(path)
    if fmt != "hub" and not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    config = {"path": str(path), "format": fmt, "options": _plain(opts), "ingest": _plain(cfg)}
    run = ws.start_run("ingest", config)
    t0 = time.perf_counter()
    ing = Ingester(ws, path, opts, cfg, run)
    try:
        for line, row in _rows(path, cfg, opts):
            ing.take(line, row)
            if progress is not None and ing.report.rows_in % 2000 == 0:
                progress(ing.report.rows_in)
        ing.flush()
    except BaseException:
        ing.flush()  # keep what was read: a rerun then skips it
        r = ing.report
        run.finish({"in": r.rows_in, "out": r.taken, "quarantined": r.quarantined}, status="failed")
        raise
    r = ing.report
    r.seconds = time.perf_counter() - t0
    r.bytes_read = path.stat().st_size if path.is_file() else 0
    assert r.reconciles, r  # a bug in this module, not in the input
    run.finish(
        {"in": r.rows_in, "out": r.taken, "quarantined": r.quarantined, "already_stored": r.already_stored,
         "traces_written": r.traces_written, "prompts_written": r.prompts_written, **{f"reason:{k}": v for k, v in r.reasons.items()}}
    )
    return r


def _rows(path: Path, cfg: IngestConfig, opts: IngestOptions) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    yield from read_rows(path, max_row_bytes=cfg.max_row_bytes, columns=opts.columns, split=opts.split)


def _plain(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)
