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
import math
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

# Quarantined raw text is kept up to this size; the file and line locate the full row.
MAX_RAW_KEPT = 1 << 20
# Deeper rows are quarantined (too_deep): real rows nest a few levels; thousands of levels only
# exhaust the recursion of every later JSON encoder.
MAX_DEPTH = 100
# What a compressed stream that ends early (or is corrupt) raises while being read.
TRUNCATED = (EOFError, zlib.error, gzip.BadGzipFile)
# Lone surrogates: undecodable bytes under `surrogateescape`, or a "\ud800" JSON escape.
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def _path_str(path: tuple[str | int, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(row)"


def check_values(obj: Any, strings: bool = True) -> RowError | None:
    """A RowError for the first value no store can keep faithfully, naming its field; else None.

    Too deep nesting, NaN/Infinity (they would become NULL) and, when `strings`, lone surrogates
    (invalid UTF-8 read with `surrogateescape`, or a "\\ud800" escape). Iterative: a deep row
    cannot exhaust the recursion limit here.
    """
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(obj, ())]
    while stack:
        v, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return RowError("too_deep", f"nested more than {MAX_DEPTH} levels at {_path_str(path[:8])}…",
                            field=str(path[0]) if path else None)
        if isinstance(v, dict):
            for k, x in v.items():
                if strings and isinstance(k, str) and _SURROGATE.search(k):
                    return RowError("invalid_utf8", f"key {k.encode('utf-8', 'backslashreplace')[:80]!r}: "
                                    "invalid UTF-8 or a lone surrogate", field=_path_str((*path, "<key>")))
                stack.append((x, (*path, str(k))))
        elif isinstance(v, (list, tuple)):
            stack.extend((x, (*path, i)) for i, x in enumerate(v))
        elif isinstance(v, float) and not math.isfinite(v):
            return RowError("non_finite_number", f"{_path_str(path)} is {v!r}; JSON and the store have no NaN/Infinity",
                            field=_path_str(path))
        elif strings and isinstance(v, str):
            m = _SURROGATE.search(v)
            if m:
                what = "invalid UTF-8 byte" if "\udc80" <= m.group() <= "\udcff" else "lone surrogate"
                return RowError("invalid_utf8", f"{_path_str(path)}: {what} at character {m.start()}",
                                field=_path_str(path))
    return None


def _depth_suspect(raw: bytes) -> bool:
    # Cheap pre-check for the fast path: a row can only be too deep with that many brackets.
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH


def check_regular(path: Path) -> None:
    """Refuse anything but a regular file (a symlink to /dev/zero, a FIFO, a socket, a device)."""
    try:
        st = os.stat(path)
    except OSError:
        return  # missing: the caller says so
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        kind = ("character device" if stat.S_ISCHR(st.st_mode) else "block device" if stat.S_ISBLK(st.st_mode)
                else "FIFO" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "special file")
        real = os.path.realpath(path)
        via = f" (via symlink to {real})" if real != os.path.abspath(path) else ""
        raise ValueError(f"{path}: not a regular file but a {kind}{via}; ingest reads regular files only")


def _truncated(path: Path, after: int, e: BaseException, unit: str = "line") -> RowError:
    return RowError("truncated_input", f"{path.name}: the compressed data ends early or is corrupt after "
                    f"{unit} {after} ({type(e).__name__}: {e}); rows after it are missing from the file")


def input_format(path: Path) -> str:
    """The reader a path needs: jsonl, json, parquet, csv, tsv, datasets, or hub."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    check_regular(path)
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
    f = open(path, "rb", buffering=1 << 20)  # noqa: SIM115 - returned to the caller's `with`
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped after input_format checked it
        f.close()
        check_regular(path)
        raise ValueError(f"{path}: not a regular file")
    if path.name.lower().endswith(".gz"):
        f.close()  # GzipFile(fileobj=…) would not close it
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return f


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
    if raw.startswith(b"\xef\xbb\xbf"):  # a BOM (first line, or files concatenated) is not JSON
        raw = raw[3:].lstrip()
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
            # A row of scalars (an R1 trace: a few long strings) is one level deep: no need to
            # count the brackets of its 20 KB of text.
            if any(isinstance(v, (dict, list)) for v in obj.values()) and _depth_suspect(raw):
                err = check_values(obj, strings=False)
                if err is not None:
                    return RowError(err.reason, err.detail, _raw_text(raw), err.field)
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
    # Only rows orjson refused get here (NaN, 1e400, a "\ud800" escape, deep nesting): name the
    # field that no store can keep.
    err = check_values(obj)
    if err is not None:
        reason = "invalid_unicode" if err.reason == "invalid_utf8" else err.reason
        return RowError(reason, err.detail, _raw_text(raw), err.field)
    return obj


def decode_jsonl_block(data: bytes, first_line: int, max_row_bytes: int) -> Iterator[ReadItem]:
    """The rows of a block of whole JSONL lines (see `jsonl_blocks`), numbered from `first_line`."""
    line_no = first_line - 1
    for raw in data.split(b"\n"):
        line_no += 1
        stripped = raw.strip()
        if stripped:
            yield line_no, _decode_json_line(stripped, max_row_bytes)


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Where a block of whole lines lies in a plain (uncompressed) file: a worker reads it there."""

    path: str  # absolute: a worker's working directory may differ
    offset: int
    size: int

    def read(self) -> bytes:
        with open(self.path, "rb") as f:
            data = os.pread(f.fileno(), self.size, self.offset)
        if len(data) != self.size:
            raise ValueError(f"{self.path}: the file changed while it was read ({len(data)} bytes at offset "
                             f"{self.offset}, expected {self.size})")
        return data


def jsonl_blocks(path: Path, block_bytes: int = 8 << 20, max_row_bytes: int = 64 << 20,
                 ranges: bool = False) -> Iterator[tuple[bytes | ByteRange, int] | ReadItem]:
    """Split a JSONL file into blocks of whole lines: `(data, first_line)` for worker processes.

    An oversized line is never read whole: it is yielded as `(line, RowError)` in its place.
    `ranges`: for a plain file, yield each block's `ByteRange` instead of its bytes (the block's
    lines with their newlines: `decode_jsonl_block` reads them alike), so the bytes need not be
    sent to a worker.
    """
    ranges = ranges and not path.name.lower().endswith(".gz")
    where = os.path.abspath(path)
    with _open_binary(path) as f:
        line_no = 1
        buf: list[bytes] = []
        size = 0
        first = 1
        pos = start = 0  # bytes read; where the block in `buf` starts

        def block() -> tuple[bytes | ByteRange, int]:
            return (ByteRange(where, start, size) if ranges else b"\n".join(buf)), first

        while True:
            try:
                raw = f.readline(max_row_bytes + 1)
            except TRUNCATED as e:
                if buf:
                    yield block()
                    buf = []
                yield line_no, _truncated(path, line_no - 1, e)
                break
            if not raw:
                break
            pos += len(raw)
            if len(raw) > max_row_bytes and not raw.endswith(b"\n"):
                if buf:
                    yield block()
                    buf, size = [], 0
                total = len(raw)
                head = raw
                try:
                    while raw and not raw.endswith(b"\n"):
                        raw = f.readline(1 << 20)
                        total += len(raw)
                        pos += len(raw)
                except TRUNCATED as e:
                    yield line_no, _truncated(path, line_no, e)
                    return
                yield line_no, RowError("row_too_large", f"over {total} bytes > max_row_bytes={max_row_bytes}", _raw_text(head))
                line_no += 1
                first = line_no
                continue
            if not buf:
                first, start = line_no, pos - len(raw)
            buf.append(b"" if ranges else raw.rstrip(b"\n"))
            size += len(raw)
            line_no += 1
            if size >= block_bytes:
                yield block()
                buf, size = [], 0
        if buf:
            yield block()


def read_jsonl(path: Path, max_row_bytes: int = 64 << 20) -> Iterator[ReadItem]:
    with _open_binary(path) as f:
        line_no = 0
        while True:
            # readline with a limit keeps a single 10 GB line from being read whole.
            try:
                raw = f.readline(max_row_bytes + 1)
            except TRUNCATED as e:
                yield line_no + 1, _truncated(path, line_no, e)
                return
            if not raw:
                return
            line_no += 1
            if len(raw) > max_row_bytes and not raw.endswith(b"\n"):
                size = len(raw)
                head = raw
                try:
                    while raw and not raw.endswith(b"\n"):  # skip the rest of the oversized line
                        raw = f.readline(1 << 20)
                        size += len(raw)
                except TRUNCATED as e:
                    yield line_no, _truncated(path, line_no - 1, e)
                    return
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
        try:
            head = f.read(4096)
        except TRUNCATED as e:
            yield 1, _truncated(path, 0, e, "byte")
            return
        first = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
        if first != b"[":
            if first == b"{" and _looks_like_single_object(path):
                f.seek(0)
                try:
                    data = f.read(max_row_bytes + 1)
                except TRUNCATED as e:
                    yield 1, _truncated(path, 0, e, "byte")
                    return
                yield 1, _decode_json_line(data, max_row_bytes)
                return
            f.seek(0)
        else:
            f.seek(0)
            yield from _stream_array(f, max_row_bytes, path)
            return
    yield from read_jsonl(path, max_row_bytes)


def _looks_like_single_object(path: Path) -> bool:
    # One object over several lines (pretty-printed) versus JSON lines: JSON lines parse line 1.
    with _open_binary(path) as f:
        try:
            line = f.readline(1 << 20)
        except TRUNCATED:
            return False  # read as JSON lines, which reports the truncation
    try:
        json.loads(line)
        return False
    except (json.JSONDecodeError, UnicodeDecodeError):
        return True


# Candidate restarts tried after a bad array element before giving up on the rest of the file:
# each try decodes from a `,{`, so an unbounded number could make a hostile file quadratic.
MAX_RESYNC_TRIES = 10_000


def _resync(buf: str, pos: int, start: int, eof: bool) -> tuple[int | None, int, int]:
    """After a bad element at `pos`, where the next whole element starts: the first `,`-preceded
    `{` from `start` on that decodes as an object followed by `,` or `]`.

    Returns (found or None, where to resume scanning once more text is read, tries used).
    """
    decoder = json.JSONDecoder()
    p, tries = max(start, pos + 1), 0
    while tries < MAX_RESYNC_TRIES:
        p = buf.find("{", p)
        if p < 0:
            return None, len(buf), tries
        j = p - 1
        while j > pos and buf[j] in " \t\r\n":
            j -= 1
        if buf[j] == ",":
            tries += 1
            try:
                _obj, end = decoder.raw_decode(buf, p)
            except json.JSONDecodeError as e:
                if e.pos >= len(buf) - 1 and not eof:
                    return None, p, tries  # ran off the buffer: retry here with more text
            except RecursionError:
                pass
            else:
                k = end
                while k < len(buf) and buf[k] in " \t\r\n":
                    k += 1
                if k >= len(buf) or buf[k] in ",]":
                    return p, p, tries
        p += 1
    return None, p, tries


def _stream_array(f: BinaryIO, max_row_bytes: int, path: Path | None = None) -> Iterator[ReadItem]:
    """Decode `[obj, obj, …]` one element at a time with a sliding text buffer.

    A bad element (invalid JSON, invalid UTF-8, too deep) is one quarantine row naming its index;
    reading resumes at the next element that decodes, so no good element after it is lost.
    """
    decoder = json.JSONDecoder()
    # surrogateescape: an invalid byte becomes a lone surrogate that check_values pins on its
    # element and field, instead of a decode error that stops the whole file.
    reader = io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape")  # type: ignore[arg-type]
    buf = ""
    pos = 0
    index = 0
    eof = False
    truncated: BaseException | None = None
    name = path if path is not None else Path("<json>")

    def fill() -> bool:
        nonlocal buf, pos, eof, truncated
        if eof:
            return False
        try:
            chunk = reader.read(1 << 20)
        except TRUNCATED as e:
            truncated, chunk = e, ""
        if not chunk:
            eof = True
            return False
        buf = buf[pos:] + chunk
        pos = 0
        return True

    fill()
    if buf.startswith("\ufeff"):
        buf = buf[1:]
    start = buf.find("[")
    if start < 0:
        if truncated is not None:
            yield 1, _truncated(name, 0, truncated, "element")
        return
    pos = start + 1
    while True:
        while True:  # skip whitespace and commas
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos < len(buf) or not fill():
                break
        if pos >= len(buf) or buf[pos] == "]":
            if truncated is not None:
                yield index + 1, _truncated(name, index, truncated, "element")
            return
        index += 1
        err: RowError | None = None
        while True:
            try:
                obj, end = decoder.raw_decode(buf, pos)
                break
            except RecursionError:
                err = RowError("too_deep", f"element {index}: nested too deeply", buf[pos : pos + 4096])
            except json.JSONDecodeError as e:
                if len(buf) - pos > max_row_bytes:
                    err = RowError("row_too_large", f"element {index}: over max_row_bytes={max_row_bytes}",
                                   buf[pos : pos + 4096])
                elif not eof and fill():
                    continue
                else:
                    err = RowError("invalid_json", f"element {index}: {e.msg} (character {e.pos - pos} of the element)",
                                   buf[pos : pos + 4096])
            break
        if err is not None:
            yield index, err
            # Resume at the next element that decodes, reading ahead as far as max_row_bytes.
            tries, offset = 0, pos + 1  # offsets are relative to pos: fill() moves the buffer
            while True:
                nxt, resume, used = _resync(buf, pos, pos + (offset - pos), eof)
                tries += used
                offset = resume
                if nxt is not None or tries >= MAX_RESYNC_TRIES or len(buf) - pos > max_row_bytes:
                    break
                before = pos
                if not fill():
                    nxt, _r, _u = _resync(buf, pos, pos + (offset - before), True)
                    break
                offset -= before  # fill() dropped buf[:before] and reset pos to 0
            if nxt is None:
                if truncated is not None:
                    yield index + 1, _truncated(name, index, truncated, "element")
                elif not eof or tries >= MAX_RESYNC_TRIES:
                    yield index + 1, RowError("unreadable_rest", f"elements after {index} cannot be located "
                                              "(no later element decodes within max_row_bytes)", buf[pos : pos + 4096])
                return
            pos = nxt
            continue
        elem, pos = buf[pos:end], end
        if not isinstance(obj, dict):
            yield index, RowError("not_an_object", f"a JSON {type(obj).__name__}, expected an object", str(obj)[:4096])
            continue
        bad = check_values(obj)
        if bad is not None:
            raw = _raw_text(elem.encode("utf-8", "surrogateescape"))
            yield index, RowError(bad.reason, f"element {index}: {bad.detail}", raw, bad.field)
        else:
            yield index, obj


def read_parquet(path: Path) -> Iterator[ReadItem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"{path}: not a readable Parquet file: {e}") from None
    line = 0
    batches = pf.iter_batches(batch_size=1024)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as e:
            # A corrupt page: what came before is kept; the rest of the file cannot be located.
            yield line + 1, RowError("corrupt_input", f"{path.name}: unreadable after row {line}: {e}")
            return
        for row in batch.to_pylist():
            line += 1
            yield line, _checked(row, line)  # NaN/Inf floats, absurd nesting


def read_csv(path: Path, delimiter: str, columns: list[str] | None) -> Iterator[ReadItem]:
    """CSV/TSV rows keyed by the header (or `columns`); a leading BOM is dropped.

    Bytes are decoded with `surrogateescape`, so invalid UTF-8 costs only its own row (quarantined
    as invalid_utf8 naming the line and column) and reading goes on with the next line.
    """
    csv.field_size_limit(1 << 30)
    truncated: list[BaseException] = []

    def lines(f: BinaryIO) -> Iterator[str]:
        first = True
        while True:
            try:
                raw = f.readline()
            except TRUNCATED as e:
                truncated.append(e)
                return
            if not raw:
                return
            text = raw.decode("utf-8", "surrogateescape")
            if first:
                text = text.removeprefix("\ufeff")  # a BOM is not part of the first column's name
                first = False
            yield text

    with _open_binary(path) as f:
        reader = csv.reader(lines(f), delimiter=delimiter)
        header = columns
        line = 0
        while True:
            try:
                rec = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                yield reader.line_num, RowError("invalid_csv", str(e))
                continue
            line = reader.line_num
            if header is None:
                bad = check_values(rec)
                if bad is not None:
                    raise ValueError(f"{path}: line {line}: the header is not valid UTF-8 ({bad.detail})")
                header = rec
                continue
            if len(rec) != len(header):
                yield line, RowError(
                    "wrong_field_count", f"{len(rec)} fields, header has {len(header)}",
                    delimiter.join(rec).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")[:4096],
                )
                continue
            row = dict(zip(header, rec))
            bad = check_values(row)
            if bad is not None:
                raw = delimiter.join(rec).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                yield line, RowError(bad.reason, f"line {line}: {bad.detail}", raw[:4096], bad.field)
                continue
            yield line, row
    if truncated:
        yield line + 1, _truncated(path, line, truncated[0])


def read_datasets_folder(path: Path, split: str | None) -> Iterator[ReadItem]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        names = [split] if split else list(ds)
        for name in names:
            for i, row in enumerate(ds[name], start=1):
                yield i, _checked(row, i)
    else:
        for i, row in enumerate(ds, start=1):
            yield i, _checked(row, i)


def _checked(row: Row, line: int) -> Row | RowError:
    bad = check_values(row, strings=False)
    return row if bad is None else RowError(bad.reason, f"row {line}: {bad.detail}", None, bad.field)


def read_hub(dataset_id: str, split: str | None) -> Iterator[ReadItem]:
    """A hub dataset, streamed (needs network: never used by tests)."""
    import datasets

    ds = datasets.load_dataset(dataset_id, split=split or "train", streaming=True)
    yield from enumerate(ds, start=1)
