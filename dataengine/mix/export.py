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
- ``verdicts``: JSON object ``{verifier: verdict}`` (``{}`` when none).

A held-out ``test`` split takes whole prompts (md5 of the prompt id), never single traces, so no
prompt is in both splits.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dataengine import sqlfiles
from dataengine.config import PipelineConfig, apply_overrides
from dataengine.mix.config import ExportConfig
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
    ("verdicts", pa.string()),
])


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
    system = row.get("system") or system_prompt
    msgs = [{"role": "system", "content": system}] if system else []
    if row.get("history"):
        msgs += [{"role": t["role"], "content": t["content"]} for t in json.loads(row["history"])]
    msgs.append({"role": "user", "content": row["prompt"]})
    msgs.append({"role": "assistant", "content": assistant_content(row["bucket"], row["reasoning"], row["answer"])})
    return msgs


def split_of(prompt_id: str, test_fraction: float) -> str:
    """`test` for a stable `test_fraction` share of prompts, `train` for the rest."""
    if test_fraction <= 0:
        return "train"
    h = int(hashlib.md5(f"split:{prompt_id}".encode()).hexdigest()[:8], 16)
    return "test" if h < test_fraction * 0x100000000 else "train"


class _RollingWriter:
    """Size-bounded shards of one split in one format; renamed to `-NNNNN-of-NNNNN` when done."""

    def __init__(self, folder: Path, split: str, fmt: str, shard_bytes: int):
        self.folder, self.split, self.fmt, self.shard_bytes = folder, split, fmt, shard_bytes
        folder.mkdir(parents=True, exist_ok=True)
        self.paths: list[Path] = []
        self._pq: pq.ParquetWriter | None = None
        self._fh: Any = None
        self._bytes = 0

    def _open(self) -> None:
        path = self.folder / f".{self.split}-{len(self.paths):05d}.{self.fmt}.tmp"
        self.paths.append(path)
        if self.fmt == "parquet":
            self._pq = pq.ParquetWriter(path, EXPORT_SCHEMA, compression="zstd")
        else:
            self._fh = open(path, "w", encoding="utf-8")
        self._bytes = 0

    def _close(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def write(self, table: pa.Table, rows: list[dict[str, Any]], nbytes: int) -> None:
        if self._pq is None and self._fh is None:
            self._open()
        if self.fmt == "parquet":
            assert self._pq is not None
            self._pq.write_table(table)
        else:
            self._fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        self._bytes += nbytes
        if self._bytes >= self.shard_bytes:
            self._close()

    def finish(self) -> list[Path]:
        self._close()
        final = []
        for i, p in enumerate(self.paths):
            dst = self.folder / f"{self.split}-{i:05d}-of-{len(self.paths):05d}.{self.fmt}"
            os.replace(p, dst)
            final.append(dst)
        return final


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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("hf", "data", "jsonl", "images", ".arrow_tmp"):
        shutil.rmtree(out / sub, ignore_errors=True)  # an export folder is rebuilt whole, never merged
    run = ws.start_run("export", {**asdict(ecfg), "mix_id": mix_id, "out_dir": str(out)})
    t0 = time.perf_counter()
    writers: dict[tuple[str, str], _RollingWriter] = {}
    arrow_sinks: dict[str, tuple[Any, pa.RecordBatchStreamWriter]] = {}
    stats: dict[str, Any] = {"rows": Counter(), "by_bucket_domain": Counter(), "tokens": {}, "estimated": 0}
    con = ws.connect()
    try:
        con.execute("set memory_limit = $m", {"m": ecfg.duckdb_memory_limit})
        tmp = out / ".duckdb_tmp"
        con.execute("set temp_directory = $t", {"t": str(tmp)})
        con.execute("set preserve_insertion_order = true")
        # A relation (con.sql), not a DB-API result: the latter materialises every row before the
        # first batch, the former streams.
        reader = con.sql(sqlfiles.load("mix/export_rows"), params={"mix_id": mix_id}).to_arrow_reader(ecfg.batch_rows)
        for batch in reader:
            per_split: dict[str, list[dict[str, Any]]] = {}
            for r in batch.to_pylist():
                msgs = build_messages(r, ecfg.system_prompt)
                if r["prompt_tokens"] is not None and r["completion_tokens"] is not None:
                    ntok, est = int(r["prompt_tokens"]) + int(r["completion_tokens"]), False
                else:
                    ntok, est = sum(estimate_tokens(m["content"]) for m in msgs), True
                row = {"messages": msgs, "prompt_id": r["prompt_id"], "trace_id": r["trace_id"],
                       "source": r["source"], "bucket": r["bucket"], "domain": r["domain"],
                       "num_tokens": ntok, "num_tokens_estimated": est, "verdicts": r["verdicts"] or "{}"}
                split = split_of(r["prompt_id"], ecfg.test_fraction)
                for _ in range(int(r["copies"] or 1)):
                    per_split.setdefault(split, []).append(row)
                    stats["rows"][split] += 1
                    stats["by_bucket_domain"][(split, r["bucket"], r["domain"])] += 1
                    stats["tokens"].setdefault(r["bucket"], []).append(ntok)
                    stats["estimated"] += est
            for split, rows in per_split.items():
                table = pa.Table.from_pylist(rows, schema=EXPORT_SCHEMA)
                nbytes = table.nbytes
                for fmt in ("parquet", "jsonl"):
                    if fmt in ecfg.formats:
                        key = (split, fmt)
                        if key not in writers:
                            writers[key] = _RollingWriter(out / ("data" if fmt == "parquet" else "jsonl"), split, fmt,
                                                          ecfg.shard_bytes)
                        writers[key].write(table, rows, nbytes)
                if "datasets" in ecfg.formats:
                    if split not in arrow_sinks:
                        (out / ".arrow_tmp").mkdir(exist_ok=True)
                        sink = pa.OSFile(str(out / ".arrow_tmp" / f"{split}.arrow"), "wb")
                        arrow_sinks[split] = (sink, pa.ipc.new_stream(sink, EXPORT_SCHEMA))
                    arrow_sinks[split][1].write_table(table)
    except BaseException:
        run.finish({"in": 0, "out": sum(stats["rows"].values())}, status="failed")
        raise
    finally:
        con.close()
        shutil.rmtree(out / ".duckdb_tmp", ignore_errors=True)

    files: dict[str, list[str]] = {}
    for (_split, fmt), w in sorted(writers.items()):
        files.setdefault(fmt, []).extend(str(p.relative_to(out)) for p in w.finish())
    for sink, writer in arrow_sinks.values():
        writer.close()
        sink.close()
    if "datasets" in ecfg.formats:
        _save_to_disk(out, sorted(arrow_sinks), ecfg.shard_bytes)
        files["datasets"] = ["hf"]

    from dataengine.mix.card import write_card

    card = write_card(ws, out, mix_id, stats, ecfg, files)
    result = {
        "mix_id": mix_id, "run_id": run.run_id, "out_dir": str(out),
        "rows": dict(stats["rows"]), "total_rows": sum(stats["rows"].values()),
        "by_bucket": _sum_by(stats["by_bucket_domain"], 1), "files": files, "card": str(card),
        "num_tokens_estimated": stats["estimated"], "seconds": round(time.perf_counter() - t0, 3),
    }
    token = token or os.environ.get("HF_TOKEN")
    if ecfg.repo_id and token:
        result["pushed_to"] = push_to_hub(out, ecfg.repo_id, token, ecfg.private)
    run.finish({"in": result["total_rows"], "out": result["total_rows"], "quarantined": 0,
                **{f"rows:{k}": v for k, v in stats["rows"].items()}})
    return result


def _sum_by(counter: Counter[tuple[str, str, str]], idx: int) -> dict[str, int]:
    out: Counter[str] = Counter()
    for key, n in counter.items():
        out[key[idx]] += n
    return dict(out)


def _save_to_disk(out: Path, splits: list[str], shard_bytes: int) -> None:
    """Memory-map the streamed Arrow files as datasets and `save_to_disk` them as a DatasetDict."""
    import datasets

    tmp = out / ".arrow_tmp"
    dd = datasets.DatasetDict({s: datasets.Dataset.from_file(str(tmp / f"{s}.arrow")) for s in splits})
    dd.save_to_disk(str(out / "hf"), max_shard_size=shard_bytes)
    del dd
    shutil.rmtree(tmp, ignore_errors=True)


def push_to_hub(out: Path, repo_id: str, token: str, private: bool = True) -> str:
    """Upload the Parquet shards, card and images to a hub dataset repo (needs network and a token)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(out), repo_id=repo_id, repo_type="dataset",
                      allow_patterns=["README.md", "data/*", "images/*"])
    return f"https://huggingface.co/datasets/{repo_id}"
