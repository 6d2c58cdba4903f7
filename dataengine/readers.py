"""Streaming readers for input files: each yields `(line, row)` or `(line, RowError)`.

`line` is what a user looks for in the file: the 1-based line for JSONL and CSV, the 1-based element
index for JSON arrays, the 1-based row for Parquet and `datasets` folders. Readers never hold more
than one row (plus a read buffer) in memory, so a multi-GB file ingests in bounded RSS.

>>> import io, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
>>> _ = p.write_bytes(b'{"a": 1}\\n{oops\\n')
>>> [(n, r if isinstance(r, dict) else r.reason) for n, r in read_rows(p)]
[(1, {'a': 1}), (2, 'invalid_json')]
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

# Quarantined raw text is kept up to this size; the file and line locate the full row.
MAX_RAW_KEPT = 1 << 20


@dataclass(frozen=True, slots=True)
class RowError:
    """Why a row could not be taken; `field` is None when the row as a whole is bad."""

    reason: str
    detail: str
    raw: str | None = None
    field: str | None = None


Row = dict[str, Any]
ReadItem = tuple[int, "Row | RowError"]


def _raw_text(b: bytes) -> str:
    text = b[:MAX_RAW_KEPT].decode("utf-8", "backslashreplace")
    if len(b) > MAX_RAW_KEPT:
        text += f"\n…[truncated: {len(b)} bytes in all]"
    return text


def input_format(path: Path) -> str:
    """The reader a path needs: jsonl, json, parquet, csv, tsv, datasets, or hub."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return "datasets"
        raise ValueError(f"{path}: a folder that is not a `datasets.save_to_disk` folder")
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".parquet", "parquet"),
                     (".csv", "csv"), (".tsv", "tsv")):
        if name.endswith(ext):
            return fmt
    if not path.exists() and "/" in str(path) and not str(path).startswith((".", "/")):
        return "hub"
    raise ValueError(f"{path}: unknown input format (expected .jsonl, .json, .parquet, .csv, .tsv or a datasets folder)")


def _open_binary(path: Path) -> BinaryIO:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb", buffering=1 << 20)


def read_rows(
    path: Path,
    *,
    max_row_bytes: int = 64 << 20,
    columns: list[str] | None = None,
    split: str | None = None,
) -> Iterator[ReadItem]:
    """Yield every row of `path` (any supported format) with its line number."""
    fmt = input_format(path)
    if fmt == "jsonl":
        yield from read_jsonl(path, max_row_bytes)
    elif fmt == "json":
        yield from read_json(path, max_row_bytes)
    elif fmt == "parquet":
        yield from read_parquet(path)
    elif fmt in ("csv", "tsv"):
        yield from read_csv(path, "\t" if fmt == "tsv" else ",", columns)
    elif fmt == "datasets":
        yield from read_datasets_folder(path, split)
    else:
        yield from read_hub(str(path), split)


def _decode_json_line(raw: bytes, max_row_bytes: int) -> Row | RowError:
    if len(raw) > max_row_bytes:
        return RowError("row_too_large", f"{len(raw)} bytes > max_row_bytes={max_row_bytes}", _raw_text(raw))
    # Fast path: orjson validates UTF-8 and rejects lone surrogates itself. Anything it refuses
    # goes through the stdlib below, which accepts a little more (NaN, 1e400) and classifies errors.
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(obj, dict):
            return obj
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return RowError("invalid_utf8", f"byte {e.start}: {e.reason}", _raw_text(raw))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return RowError("invalid_json", f"column {e.colno}: {e.msg}", _raw_text(raw))
    except RecursionError:
        return RowError("invalid_json", "nested too deeply", _raw_text(raw))
    if not isinstance(obj, dict):
        return RowError("not_an_object", f"a JSON {type(obj).__name__}, expected an object", _raw_text(raw))
    # JSON may escape a lone surrogate ("\ud800"), which no UTF-8 writer can store; only rows that
    # contain such an escape pay for the check.
    if b"\\ud" in raw or b"\\uD" in raw:
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            return RowError("invalid_unicode", f"lone surrogate {e.object[e.start:e.end]!r} in a string", _raw_text(raw))
    return obj


def decode_jsonl_block(data: bytes, first_line: int, max_row_bytes: int) -> Iterator[ReadItem]:
    """The rows of a block of whole JSONL lines (see `jsonl_blocks`), numbered from `first_line`."""
    line_no = first_line - 1
    for raw in data.split(b"\n"):
        line_no += 1
        stripped = raw.strip()
        if stripped:
            yield line_no, _decode_json_line(stripped, max_row_bytes)


def jsonl_blocks(path: Path, block_bytes: int = 8 << 20, max_row_bytes: int = 64 << 20) -> Iterator[tuple[bytes, int] | ReadItem]:
    """Split a JSONL file into blocks of whole lines: `(data, first_line)` for worker processes.

    An oversized line is never read whole: it is yielded as `(line, RowError)` in its place.
    """
    with _open_binary(path) as f:
        line_no = 1
        buf: list[bytes] = []
        size = 0
        first = 1
        while True:
            raw = f.readline(max_row_bytes + 1)
            if not raw:
                break
            if len(raw) > max_row_bytes and not raw.endswith(b"\n"):
                if buf:
                    yield b"".join(buf), first
                    buf, size = [], 0
                total = len(raw)
                head = raw
                while raw and not raw.endswith(b"\n"):
                    raw = f.readline(1 << 20)
                    total += len(raw)
                yield line_no, RowError("row_too_large", f"over {total} bytes > max_row_bytes={max_row_bytes}", _raw_text(head))
                line_no += 1
                first = line_no
                continue
            if not buf:
                first = line_no
            buf.append(raw.rstrip(b"\n"))
            size += len(raw)
            line_no += 1
            if size >= block_bytes:
                yield b"\n".join(buf), first
                buf, size = [], 0
        if buf:
            yield b"\n".join(buf), first


def read_jsonl(path: Path, max_row_bytes: int = 64 << 20) -> Iterator[ReadItem]:
    with _open_binary(path) as f:
        line_no = 0
        while True:
            # readline with a limit keeps a single 10 GB line from being read whole.
            raw = f.readline(max_row_bytes + 1)
            if not raw:
                return
            line_no += 1
            if len(raw) > max_row_bytes and not raw.endswith(b"\n"):
                size = len(raw)
                head = raw
                while raw and not raw.endswith(b"\n"):  # skip the rest of the oversized line
                    raw = f.readline(1 << 20)
                    size += len(raw)
                yield line_no, RowError(
                    "row_too_large", f"over {size} bytes > max_row_bytes={max_row_bytes}", _raw_text(head)
                )
                continue
            stripped = raw.strip()
            if not stripped:
                continue
            yield line_no, _decode_json_line(stripped, max_row_bytes)


def read_json(path: Path, max_row_bytes: int = 64 << 20) -> Iterator[ReadItem]:
    """A JSON array streamed element by element; a `.json` file holding JSON lines also works."""
    with _open_binary(path) as f:
        head = f.read(4096)
        first = head.lstrip()[:1]
        if first != b"[":
            if first == b"{" and _looks_like_single_object(path):
                f.seek(0)
                yield 1, _decode_json_line(f.read(), max_row_bytes)
                return
            f.seek(0)
        else:
            f.seek(0)
            yield from _stream_array(f, max_row_bytes)
            return
    yield from read_jsonl(path, max_row_bytes)


def _looks_like_single_object(path: Path) -> bool:
    # One object over several lines (pretty-printed) versus JSON lines: JSON lines parse line 1.
    with _open_binary(path) as f:
        line = f.readline(1 << 20)
    try:
        json.loads(line)
        return False
    except (json.JSONDecodeError, UnicodeDecodeError):
        return True


def _stream_array(f: BinaryIO, max_row_bytes: int) -> Iterator[ReadItem]:
    """Decode `[obj, obj, …]` one element at a time with a sliding text buffer."""
    decoder = json.JSONDecoder()
    reader = io.TextIOWrapper(f, encoding="utf-8", errors="strict")  # type: ignore[arg-type]
    buf = ""
    pos = 0
    index = 0
    eof = False

    def fill() -> bool:
        nonlocal buf, pos, eof
        try:
            chunk = reader.read(1 << 20)
        except UnicodeDecodeError as e:
            raise ValueError(f"invalid UTF-8 in JSON array near element {index + 1}: {e.reason}") from None
        if not chunk:
            eof = True
            return False
        buf = buf[pos:] + chunk
        pos = 0
        return True

    fill()
    pos = buf.index("[") + 1
    while True:
        while True:  # skip whitespace and commas
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos < len(buf) or not fill():
                break
        if pos >= len(buf) or buf[pos] == "]":
            return
        index += 1
        while True:
            try:
                obj, end = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as e:
                if len(buf) - pos > max_row_bytes:
                    yield index, RowError("row_too_large", f"element over max_row_bytes={max_row_bytes}")
                    # An oversized element cannot be resynchronised reliably: stop with a clear error.
                    raise ValueError(f"JSON array element {index} is larger than max_row_bytes") from None
                if eof or not fill():
                    yield index, RowError("invalid_json", f"element {index}: {e.msg}", buf[pos : pos + 4096])
                    return
        if not isinstance(obj, dict):
            yield index, RowError("not_an_object", f"a JSON {type(obj).__name__}, expected an object", str(obj)[:4096])
        else:
            yield index, obj
        pos = end


def read_parquet(path: Path) -> Iterator[ReadItem]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    line = 0
    for batch in pf.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            line += 1
            yield line, row


def read_csv(path: Path, delimiter: str, columns: list[str] | None) -> Iterator[ReadItem]:
    csv.field_size_limit(1 << 30)
    with open(path, newline="", encoding="utf-8", errors="strict") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = columns
        line = 0
        while True:
            try:
                rec = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                yield reader.line_num + 1, RowError("invalid_utf8", f"{e.reason}")
                return  # the text stream cannot resume past a decode error
            except csv.Error as e:
                yield reader.line_num, RowError("invalid_csv", str(e))
                continue
            line = reader.line_num
            if header is None:
                header = rec
                continue
            if len(rec) != len(header):
                yield line, RowError(
                    "wrong_field_count", f"{len(rec)} fields, header has {len(header)}", delimiter.join(rec)[:4096]
                )
                continue
            yield line, dict(zip(header, rec))


def read_datasets_folder(path: Path, split: str | None) -> Iterator[ReadItem]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        names = [split] if split else list(ds)
        for name in names:
            for i, row in enumerate(ds[name], start=1):
                yield i, row
    else:
        for i, row in enumerate(ds, start=1):
            yield i, row


def read_hub(dataset_id: str, split: str | None) -> Iterator[ReadItem]:
    """A hub dataset, streamed (needs network: never used by tests)."""
    import datasets

    ds = datasets.load_dataset(dataset_id, split=split or "train", streaming=True)
    yield from enumerate(ds, start=1)
