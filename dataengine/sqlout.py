"""Writes a DuckDB result as table, CSV, JSON, JSON lines or Parquet."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
import uuid
from pathlib import Path
from typing import Any, TextIO

import duckdb

FORMATS = ("table", "csv", "json", "jsonl", "parquet")


def _jsonable(v: Any) -> Any:
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, (decimal.Decimal, uuid.UUID)):
        return str(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "backslashreplace")
    return str(v)


def _maybe_json(v: Any) -> Any:
    # DuckDB hands JSON columns back as strings; emit them as nested JSON, not as quoted text.
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def write_result(rel: duckdb.DuckDBPyConnection | duckdb.DuckDBPyRelation, fmt: str, out: Path | None, stream: TextIO | None = None) -> int:
    """Write the pending result of `rel`; returns the number of rows written."""
    if fmt == "parquet":
        if out is None:
            raise ValueError("--format parquet needs --out FILE")
        import pyarrow.parquet as pq

        # Stream record batches: an export of every trace must not be held in memory at once.
        reader = rel.to_arrow_reader(batch_size=8192)
        n = 0
        with pq.ParquetWriter(out, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
                n += batch.num_rows
        return n
    if rel.description is None:
        return 0
    cols = [d[0] for d in rel.description]
    types = [str(d[1]) for d in rel.description]
    fh: TextIO = open(out, "w", encoding="utf-8", newline="") if out else (stream or sys.stdout)
    n = 0
    try:
        if fmt == "table":
            n = _write_table(rel, cols, fh)
        elif fmt == "csv":
            w = csv.writer(fh)
            w.writerow(cols)
            for row in _iter(rel):
                w.writerow(row)
                n += 1
        else:
            is_json = [t == "JSON" for t in types]
            if fmt == "json":
                fh.write("[")
            for row in _iter(rel):
                obj = {c: (_maybe_json(v) if j else v) for c, v, j in zip(cols, row, is_json)}
                text = json.dumps(obj, ensure_ascii=False, default=_jsonable)
                if fmt == "json":
                    fh.write(("," if n else "") + "\n  " + text)
                else:
                    fh.write(text + "\n")
                n += 1
            if fmt == "json":
                fh.write("\n]\n" if n else "]\n")
    finally:
        if out:
            fh.close()
    return n


def _iter(rel: duckdb.DuckDBPyConnection):  # type: ignore[no-untyped-def]
    while True:
        rows = rel.fetchmany(2048)
        if not rows:
            return
        yield from rows


def _write_table(rel: duckdb.DuckDBPyConnection, cols: list[str], fh: TextIO) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(*cols, show_lines=False)
    n = 0
    for row in _iter(rel):
        table.add_row(*("NULL" if v is None else _clip(str(v)) for v in row))
        n += 1
    Console(file=fh, width=200 if not fh.isatty() else None).print(table)
    return n


def _clip(s: str, limit: int = 200) -> str:
    return s if len(s) <= limit else s[: limit - 1] + "…"
