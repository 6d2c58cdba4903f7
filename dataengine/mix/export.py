"""Export a mix as a Hugging Face dataset: `save_to_disk` folder, Parquet shards, JSONL, dataset card.

Rows stream from DuckDB in record batches (mix order), are turned into chat `messages`, and go to
every writer at once, so memory stays bounded by one batch whatever the mix size::

    out/
      hf/                         datasets.DatasetDict.save_to_disk (load_from_disk)
      data/train-00000-of-00002.parquet …   size-bounded shards (load_dataset("parquet", …))
      jsonl/train-00000-of-00002.jsonl …
      README.md                   dataset card: counts, thresholds, policies, histograms
      images/num_tokens_*.png

Row schema (`EXPORT_SCHEMA`):

- ``messages``: [optional system, earlier turns of multi-turn rows, user, assistant]. The
  assistant content of a reasoning row is ``"<think>\\n" + reasoning + "\\n</think>\\n\\n" + answer``
  (what R1-distill chat templates expect); a non-reasoning row's is the plain answer, unless it was
  given a chain of thought by augmentation.
- ``prompt_id``, ``trace_id``, ``source``, ``bucket``, ``domain``.
- ``num_tokens``: stored prompt + completion token counts when the trace has them, else an
  estimate (``num_tokens_estimated`` true): one token per 4 ASCII characters, one per other character.
- ``verdicts``: a struct ``{math, mcq, code, judge, other}``: each rule verifier's verdict (null when
  it did not run), ``other`` a JSON object of any further verifier (null when none).

``export.layout: prompt_completion`` writes TRL's conversational prompt/completion columns instead of
``messages``: ``prompt`` = the turns before the assistant turn, ``completion`` = [assistant turn].
Beside the data: ``chat_template.jinja`` (the student family's template with ``{% generation %}``
markers, for TRL's ``assistant_only_loss``) and ``dataset_info.json`` (LLaMA-Factory, sharegpt
format, messages layout).

A held-out ``test`` split takes whole prompts (md5 of the prompt id), never single traces, so no
prompt is in both splits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataengine import sqlfiles
from dataengine.atomicdir import publish, staging_dir
from dataengine.config import PipelineConfig, apply_overrides
from dataengine.mix.config import ExportConfig
from dataengine.mix.ordered_rows import memory_bytes, ordered_rows
from dataengine.store import Workspace

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
EXPORT_SCHEMA = pa.schema([
    ("messages", pa.list_(MESSAGE)),
    ("prompt_id", pa.string()),
    ("trace_id", pa.string()),
    ("source", pa.string()),
    ("bucket", pa.string()),
    ("domain", pa.string()),
    ("num_tokens", pa.int64()),
    ("num_tokens_estimated", pa.bool_()),
    ("verdicts", pa.struct([(v, pa.string()) for v in ("math", "mcq", "code", "judge", "other")])),
])
VERDICT_FIELDS = ("math", "mcq", "code", "judge")


def verdicts_struct(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`{verifier: verdict}` JSON strings as the `verdicts` struct (verdict objects are a few bytes)."""
    rows = []
    for text in col.to_pylist():
        d = json.loads(text) if text else {}
        other = {k: v for k, v in d.items() if k not in VERDICT_FIELDS}
        rows.append({**{k: d.get(k) for k in VERDICT_FIELDS}, "other": json.dumps(other, sort_keys=True) if other else None})
    return pa.array(rows, EXPORT_SCHEMA.field("verdicts").type)


PROMPT_COMPLETION_SCHEMA = pa.schema([pa.field("prompt", pa.list_(MESSAGE)), pa.field("completion", pa.list_(MESSAGE)),
                                      *[f for f in EXPORT_SCHEMA if f.name != "messages"]])


def layout_schema(layout: str) -> pa.Schema:
    return PROMPT_COMPLETION_SCHEMA if layout == "prompt_completion" else EXPORT_SCHEMA


def apply_layout(table: pa.Table, layout: str) -> pa.Table:
    """Rows in `layout`: `messages` as built, or TRL's prompt/completion split before the last turn."""
    if layout != "prompt_completion":
        return table
    msgs = table.column("messages").combine_chunks()
    n = len(msgs)
    offsets = msgs.offsets.to_numpy().astype(np.int64) - msgs.offsets[0].as_py()
    values = msgs.flatten()
    last = offsets[1:] - 1  # the assistant turn closes every row
    keep = np.ones(len(values), dtype=bool)
    keep[last] = False
    prompt = pa.ListArray.from_arrays(pa.array(offsets - np.arange(n + 1), pa.int32()), values.filter(pa.array(keep)))
    completion = pa.ListArray.from_arrays(pa.array(np.arange(n + 1), pa.int32()), values.take(pa.array(last)))
    rest = [table.column(f.name) for f in EXPORT_SCHEMA if f.name != "messages"]
    return pa.Table.from_arrays([prompt, completion, *rest], schema=PROMPT_COMPLETION_SCHEMA)


def assistant_content(bucket: str, reasoning: str | None, answer: str | None) -> str:
    """The assistant turn: a think block then the answer for reasoning rows, the answer otherwise.

    >>> assistant_content("reasoning", "2+2=4", "4")
    '<think>\\n2+2=4\\n</think>\\n\\n4'
    >>> assistant_content("non_reasoning", "", "Hello!")
    'Hello!'
    """
    if bucket == "reasoning" or reasoning:
        return f"<think>\n{(reasoning or '').strip()}\n</think>\n\n{(answer or '').strip()}"
    return (answer or "").strip()


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: ~4 ASCII characters per token, ~1 token per CJK/other character."""
    n_ascii = len(text.encode("ascii", "ignore"))
    return max(1, n_ascii // 4 + (len(text) - n_ascii))


def build_messages(row: dict[str, Any], system_prompt: str | None) -> list[dict[str, str]]:
    """The messages of one row (reference implementation of what `build_batch` does in bulk)."""
    system = row.get("system") or system_prompt
    msgs = [{"role": "system", "content": system}] if system else []
    if row.get("history"):
        msgs += [{"role": t["role"], "content": t["content"]} for t in json.loads(row["history"])]
    msgs.append({"role": "user", "content": row["prompt"]})
    msgs.append({"role": "assistant", "content": assistant_content(row["bucket"], row["reasoning"], row["answer"])})
    return msgs


def _estimate_tokens_array(content: pa.Array) -> np.ndarray:
    """`estimate_tokens` in bulk: non-ASCII characters counted from bytes - chars (CJK: 3 bytes)."""
    chars = pc.utf8_length(content).to_numpy(zero_copy_only=False).astype(np.int64)
    nbytes = pc.binary_length(content).to_numpy(zero_copy_only=False).astype(np.int64)
    non_ascii = (nbytes - chars) // 2
    return np.maximum((chars - non_ascii) // 4 + non_ascii, 1)


def _message_layout(
    n: int, systems: list[str | None], histories: list[str | None], system_prompt: str | None
) -> tuple[Any, list[str], list[int], list[str]]:
    """Where each message's text sits in the pool [prompt_0..n-1, assistant_0..n-1, extra…].

    Returns (pool index per message, role per message, list offsets per row, extra short texts).
    """
    if not system_prompt and not any(systems) and not any(histories):
        # the common case (single-turn rows): [user, assistant] per row, no Python loop
        idx = np.empty(2 * n, dtype=np.int64)
        idx[0::2], idx[1::2] = np.arange(n), np.arange(n) + n
        return idx, ["user", "assistant"] * n, list(range(0, 2 * n + 1, 2)), []
    extra: list[str] = []
    roles: list[str] = []
    index: list[int] = []
    offsets = [0]
    for i in range(n):
        system = systems[i] or system_prompt
        if system:
            roles.append("system")
            index.append(2 * n + len(extra))
            extra.append(system)
        if histories[i]:
            for turn in json.loads(histories[i]):
                roles.append(turn["role"])
                index.append(2 * n + len(extra))
                extra.append(turn["content"])
        roles += ["user", "assistant"]
        index += [i, n + i]
        offsets.append(len(index))
    return index, roles, offsets, extra


def build_batch(batch: pa.RecordBatch, system_prompt: str | None) -> tuple[pa.Table, np.ndarray]:
    """Export rows (EXPORT_SCHEMA) for one batch of `export_rows.sql`, plus each row's copies.

    The long texts (prompt, reasoning, answer) never become Python strings: the assistant turn is
    joined with Arrow kernels and the message list is gathered with `take` from a pool of texts;
    Python only walks the short per-row structure (system, multi-turn history).
    """
    n = batch.num_rows
    bucket = batch.column("bucket")
    # `Trace` stores reasoning already stripped (records.split_completion); trimming 20 KB strings
    # again would copy every one of them.
    reasoning = pc.fill_null(batch.column("reasoning"), "")
    answer = pc.utf8_trim_whitespace(pc.fill_null(batch.column("answer"), ""))
    with_think = pc.or_(pc.equal(bucket, "reasoning"), pc.greater(pc.utf8_length(reasoning), 0))
    think = pc.binary_join_element_wise("<think>\n", reasoning, "\n</think>\n\n", answer, "")
    assistant = pc.if_else(with_think, think, answer)
    prompt = batch.column("prompt")
    systems = batch.column("system").to_pylist()
    histories = batch.column("history").to_pylist()

    index, roles, offsets, extra = _message_layout(n, systems, histories, system_prompt)
    pool = pa.concat_arrays([prompt.cast(pa.large_string()), assistant.cast(pa.large_string()),
                             pa.array(extra, pa.large_string())])
    content = pool.take(pa.array(index, pa.int64())).cast(pa.string())
    messages = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()),
                                        pa.StructArray.from_arrays([pa.array(roles, pa.string()), content],
                                                                   fields=list(MESSAGE)))
    est = _estimate_tokens_array(content)
    est_rows = np.add.reduceat(est, np.array(offsets[:-1], dtype=np.int64)) if n else est[:0]
    ptok, ctok = batch.column("prompt_tokens"), batch.column("completion_tokens")
    known = pc.and_(pc.is_valid(ptok), pc.is_valid(ctok))
    stored = pc.add(pc.cast(pc.fill_null(ptok, 0), pa.int64()), pc.cast(pc.fill_null(ctok, 0), pa.int64()))
    num_tokens = pc.if_else(known, stored, pa.array(est_rows, pa.int64()))
    table = pa.Table.from_arrays([
        messages, batch.column("prompt_id"), batch.column("trace_id"), batch.column("source"), bucket,
        batch.column("domain"), num_tokens, pc.invert(known), verdicts_struct(batch.column("verdicts")),
    ], schema=EXPORT_SCHEMA)
    copies = pc.fill_null(batch.column("copies"), 1).to_numpy(zero_copy_only=False).astype(np.int64)
    return table, copies


def split_of(prompt_id: str, test_fraction: float) -> str:
    """`test` for a stable `test_fraction` share of prompts, `train` for the rest."""
    if test_fraction <= 0:
        return "train"
    h = int(hashlib.md5(f"split:{prompt_id}".encode()).hexdigest()[:8], 16)
    return "test" if h < test_fraction * 0x100000000 else "train"


# What an export writes; a previous export's copies are replaced, anything else in the folder kept.
EXPORT_OWNED = ("hf", "data", "jsonl", "images", ".arrow_tmp", ".duckdb_tmp", "README.md", "chat_template.jinja",
                "dataset_info.json")


class _RollingWriter:
    """Size-bounded shards of one split in one format; renamed to `-NNNNN-of-NNNNN` when done.

    `fmt`: parquet, jsonl, or arrow (an IPC stream file of the `save_to_disk` layout: shards named
    `data-NNNNN-of-NNNNN.arrow` in the split's own folder, see `hf_disk.py`).
    """

    def __init__(self, folder: Path, split: str, fmt: str, shard_bytes: int):
        self.folder, self.split, self.fmt, self.shard_bytes = folder, split, fmt, shard_bytes
        folder.mkdir(parents=True, exist_ok=True)
        self.paths: list[Path] = []
        self._pq: pq.ParquetWriter | None = None
        self._ipc: pa.ipc.RecordBatchStreamWriter | None = None
        self._fh: Any = None
        self._bytes = 0
        self._rows = 0
        self.schema: pa.Schema | None = None  # the layout's; taken from the first table written

    def _open(self) -> None:
        path = self.folder / f".{self.split}-{len(self.paths):05d}.{self.fmt}.tmp"
        self.paths.append(path)
        if self.fmt == "parquet":
            self._pq = pq.ParquetWriter(path, self.schema or EXPORT_SCHEMA, compression="zstd")
        else:
            self._fh = pa.OSFile(str(path), "wb") if self.fmt == "arrow" else open(path, "wb")
            if self.fmt == "arrow":
                from dataengine.mix.hf_disk import features_schema

                self._ipc = pa.ipc.new_stream(self._fh, features_schema(self.schema or EXPORT_SCHEMA))
        self._bytes = 0

    def _close(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        if self._ipc is not None:
            self._ipc.close()
            self._ipc = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def write(self, table: pa.Table, nbytes: int) -> None:
        self.schema = self.schema or table.schema
        if self._pq is None and self._fh is None:
            self._open()
        if self.fmt == "parquet":
            assert self._pq is not None
            self._pq.write_table(table)
        elif self.fmt == "arrow":
            assert self._ipc is not None
            self._ipc.write_table(table)  # the features metadata travels in the stream's schema
        else:
            import polars as pl  # its NDJSON writer is native; json.dumps per row is the slow path

            pl.from_arrow(table).write_ndjson(self._fh)
        self._bytes += nbytes
        self._rows += table.num_rows
        if self._bytes >= self.shard_bytes:
            self._close()

    def abort(self) -> None:
        """Close open files after a failure (the staging folder is removed whole)."""
        # a half-written shard may refuse to close; it is discarded with the folder
        with contextlib.suppress(Exception):
            self._close()

    def finish(self) -> list[Path]:
        if self.fmt == "arrow" and not self._rows and self._ipc is not None:
            # datasets builds a table from the stream's batches: an empty split needs one empty batch
            self._ipc.write_batch(pa.RecordBatch.from_pylist([], schema=self.schema or EXPORT_SCHEMA))
        self._close()
        final = []
        for i, p in enumerate(self.paths):
            name = (f"data-{i:05d}-of-{len(self.paths):05d}.arrow" if self.fmt == "arrow"
                    else f"{self.split}-{i:05d}-of-{len(self.paths):05d}.{self.fmt}")
            os.replace(p, self.folder / name)
            final.append(self.folder / name)
        if self.fmt == "arrow":
            from dataengine.mix.hf_disk import write_split_meta

            write_split_meta(self.folder, self.schema or EXPORT_SCHEMA, [p.name for p in final])
        return final


def _prefetched(rows: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """`rows` produced on a thread of its own, `depth` batches ahead: the DuckDB scan and the
    Arrow gathers of the next batches (both release the GIL) overlap building and writing this one.
    Closing the generator (an error downstream) stops the producer and waits for it."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in rows:
                while not stop.is_set():
                    try:
                        q.put(("row", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            q.put(("end", None))
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            q.put(("error", e))
        finally:
            if hasattr(rows, "close"):
                rows.close()  # runs ordered_rows' cleanup (its temp files) on this thread

    t = threading.Thread(target=produce, name="export-read", daemon=True)
    t.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)
        t.join()


def _write_parts(items: list[tuple[_RollingWriter, pa.Table, int]]) -> None:
    for w, part, nbytes in items:
        w.write(part, nbytes)


def latest_mix_id(ws: Workspace) -> str:
    row = ws.query(sqlfiles.load("mix/latest_mix")).fetchone()
    if not row or not row[0]:
        raise ValueError("no successful mix run in this workspace; run `dataengine mix` first")
    return row[0]


def run_export(ws: Workspace, cfg: PipelineConfig, out_dir: str | Path, *, token: str | None = None,
               **overrides: Any) -> dict[str, Any]:
    """Export the mix `export.mix_id` (default: the latest) to `out_dir`; returns counts and paths.

    Pushes to the hub only when `export.repo_id` is set and a token is given (`token`, else $HF_TOKEN).

    >>> run_export(ws, load_config("pipeline.yaml"), "out/r1-mix", test_fraction=0.01)   # doctest: +SKIP
    """
    ecfg: ExportConfig = apply_overrides(cfg.section("export"), overrides)
    ecfg.validate()
    mix_id = ecfg.mix_id or latest_mix_id(ws)
    # Built whole beside the target and swapped in at the end, never merged: a killed export
    # leaves the previous one whole (dataengine.atomicdir).
    final = Path(out_dir).resolve()
    if final.is_relative_to(ws.root / "tables"):
        raise ValueError(f"{final}: inside the workspace's tables/, which only the store writes")
    out = staging_dir(final)
    run = ws.start_run("export", {**asdict(ecfg), "mix_id": mix_id, "out_dir": str(final)})
    t0 = time.perf_counter()
    writers: dict[tuple[str, str], _RollingWriter] = {}
    fmts = [f for f, name in (("parquet", "parquet"), ("jsonl", "jsonl"), ("arrow", "datasets")) if name in ecfg.formats]

    def writer(split: str, fmt: str) -> _RollingWriter:
        if (split, fmt) not in writers:
            folder = out / {"parquet": "data", "jsonl": "jsonl", "arrow": f"hf/{split}"}[fmt]
            writers[(split, fmt)] = _RollingWriter(folder, split, fmt, ecfg.shard_bytes)
        return writers[(split, fmt)]

    stats: dict[str, Any] = {"rows": Counter(), "by_bucket_domain": Counter(), "tokens": {}, "estimated": 0}
    # Each format's writer runs on its own thread (Parquet's zstd, the IPC and NDJSON writers
    # release the GIL), while the main thread reads and builds the next batch: one batch in
    # flight per writer keeps the shards in order and memory bounded.
    pool = ThreadPoolExecutor(max_workers=max(1, len(fmts)), thread_name_prefix="export-write")
    pending: list[Future[None]] = []
    rows_in: Any = None  # the reading thread's generator: closed before its connection

    def drain() -> None:
        for f in pending:
            f.result()
        pending.clear()

    con = ws.connect()
    try:
        con.execute("set enable_progress_bar = false")  # it writes to stdout, which is the CLI's output
        con.execute("set memory_limit = $m", {"m": ecfg.duckdb_memory_limit})
        tmp = out / ".duckdb_tmp"
        con.execute("set temp_directory = $t", {"t": str(tmp)})
        # Mix order comes from sorting keys only; the text scans need no order (ordered_rows.py).
        con.execute("set preserve_insertion_order = false")
        # A quarter of the memory limit per partition of text: a partition is copied about three
        # times on its way to the writers (sorted, joined into messages, encoded).
        part_bytes = memory_bytes(ecfg.duckdb_memory_limit) // 4
        rows_in = _prefetched(ordered_rows(con, mix_id, ecfg.batch_rows, part_bytes, tmp / "sort"))
        for batch in rows_in:
            table, copies = build_batch(batch, ecfg.system_prompt)
            if (copies != 1).any():  # upsampled rows: repeat them in place
                table = table.take(pa.array(np.repeat(np.arange(table.num_rows), copies)))
            table = apply_layout(table, ecfg.layout)
            splits = np.array([split_of(p, ecfg.test_fraction) for p in table.column("prompt_id").to_pylist()])
            buckets = table.column("bucket").to_pylist()
            domains = table.column("domain").to_pylist()
            ntok = table.column("num_tokens").to_numpy()
            stats["estimated"] += int(pc.sum(table.column("num_tokens_estimated")).as_py() or 0)
            parts = []
            for split in sorted(set(splits.tolist())):
                mask = splits == split
                part = table.filter(pa.array(mask)) if not mask.all() else table
                for b, d, m in zip(buckets, domains, mask):
                    if m:
                        stats["by_bucket_domain"][(split, b, d)] += 1
                stats["rows"][split] += part.num_rows
                parts.append((split, part, part.nbytes))
            for b in set(buckets):
                sel = np.array([x == b for x in buckets])
                stats["tokens"].setdefault(b, []).extend(ntok[sel].tolist())
            drain()
            for fmt in fmts:
                # one task per format: a format's shards are written by one thread, in order
                pending.append(pool.submit(_write_parts, [(writer(split, fmt), part, nbytes)
                                                          for split, part, nbytes in parts]))
        drain()
        if not stats["rows"]:  # an empty mix still exports a loadable (empty) train split
            empty = layout_schema(ecfg.layout).empty_table()
            for fmt in fmts:
                writer("train", fmt).write(empty, 0)
        files: dict[str, list[str]] = {}
        for (_split, fmt), w in sorted(writers.items()):
            paths = w.finish()
            if fmt != "arrow":
                files.setdefault(fmt, []).extend(str(p.relative_to(out)) for p in paths)
    except BaseException:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)
        for w in writers.values():
            w.abort()
        shutil.rmtree(out, ignore_errors=True)  # the staging folder; the previous export is untouched
        run.finish({"in": 0, "out": sum(stats["rows"].values())}, status="failed")
        raise
    finally:
        pool.shutdown(wait=True)
        if rows_in is not None:
            rows_in.close()
        con.close()
        shutil.rmtree(out / ".duckdb_tmp", ignore_errors=True)

    if "arrow" in fmts:
        from dataengine.mix.hf_disk import write_dataset_dict

        write_dataset_dict(out / "hf", sorted({s for s, f in writers if f == "arrow"}))
        files["datasets"] = ["hf"]

    trainer_files = write_trainer_files(out, ecfg, files, ecfg.card_title)

    from dataengine.mix.card import write_card

    card = write_card(ws, out, mix_id, stats, ecfg, {**files, **trainer_files})
    publish(out, final, keep=EXPORT_OWNED)
    out, card = final, final / card.relative_to(out)
    result = {
        "mix_id": mix_id, "run_id": run.run_id, "out_dir": str(out),
        "rows": dict(stats["rows"]), "total_rows": sum(stats["rows"].values()),
        "by_bucket": _sum_by(stats["by_bucket_domain"], 1), "files": files, "trainer_files": trainer_files,
        "card": str(card),
        "num_tokens_estimated": stats["estimated"], "seconds": round(time.perf_counter() - t0, 3),
    }
    token = token or os.environ.get("HF_TOKEN")
    if ecfg.repo_id and token:
        result["pushed_to"] = push_to_hub(out, ecfg.repo_id, token, ecfg.private)
    run.finish({"in": result["total_rows"], "out": result["total_rows"], "quarantined": 0,
                **{f"rows:{k}": v for k, v in stats["rows"].items()}})
    return result


def write_trainer_files(out: Path, ecfg: ExportConfig, files: dict[str, list[str]], title: str) -> dict[str, list[str]]:
    """`chat_template.jinja` (generation markers, for assistant-only loss) and LLaMA-Factory's
    `dataset_info.json` (sharegpt format; one entry per file of each split, `--dataset a,b`)."""
    written: dict[str, list[str]] = {}
    for stale in ("chat_template.jinja", "dataset_info.json"):
        (out / stale).unlink(missing_ok=True)
    if ecfg.chat_template:
        from dataengine.chat_templates import TRAINING_TEMPLATES

        (out / "chat_template.jinja").write_text(TRAINING_TEMPLATES[ecfg.chat_template], encoding="utf-8")
        written["chat_template"] = ["chat_template.jinja"]
    shards = files.get("jsonl") or files.get("parquet")
    if ecfg.layout == "messages" and shards:
        base = "".join(c if c.isalnum() else "_" for c in title.lower()).strip("_") or "dataengine_mix"
        info = {}
        for path in shards:
            split, _, rest = Path(path).stem.partition("-")
            name = f"{base}_{split}" if sum(Path(p).stem.startswith(split + "-") for p in shards) == 1 else \
                f"{base}_{split}_{rest.split('-of-')[0]}"
            info[name] = {"file_name": path, "formatting": "sharegpt",
                          "columns": {"messages": "messages"},
                          "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                   "assistant_tag": "assistant", "system_tag": "system"}}
        (out / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        written["llamafactory"] = ["dataset_info.json"]
    return written


def _sum_by(counter: Counter[tuple[str, str, str]], idx: int) -> dict[str, int]:
    out: Counter[str] = Counter()
    for key, n in counter.items():
        out[key[idx]] += n
    return dict(out)


def push_to_hub(out: Path, repo_id: str, token: str, private: bool = True) -> str:
    """Upload the Parquet shards, card and images to a hub dataset repo (needs network and a token)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(out), repo_id=repo_id, repo_type="dataset",
                      allow_patterns=["README.md", "data/*", "images/*"])
    return f"https://huggingface.co/datasets/{repo_id}"
