"""The workspace: immutable Parquet shards per table, and DuckDB views over them.

Layout (DESIGN.md "recommended shape")::

    workspace/
      catalog.duckdb            views: one per logical table, plus the named views in sql/views/
      tables/<table>/*.parquet  immutable shards; written as *.parquet.tmp, fsynced, then renamed
      artifacts/                plots, reports, exports a stage leaves behind

Why shards and not DuckDB tables: a DuckDB file has one writer process at a time, while generation
workers on many machines must append at once, and a kill -9 mid-write must leave nothing half
written. A rename is atomic, so a shard is either complete or absent; `*.parquet.tmp` leftovers of
a killed writer are never matched by the views' globs.

Text stored once (issue 15): a `traces` shard keeps `reasoning` and `answer` as code-point spans of
`completion` (`TableSpec.text_spans`); the views derive the text with substr, and code that reads
shards without DuckDB goes through `read_shard_columns`. Shards written before keep their text.

>>> ws = Workspace.init("/tmp/doctest-ws")                       # doctest: +SKIP
>>> ws.write_shard("prompts", [Prompt("1+1?").to_row()])          # doctest: +SKIP
>>> ws.query("select count(*) from prompts").fetchone()           # doctest: +SKIP
(1,)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import multiprocessing
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dataengine import sqlfiles
from dataengine.schema import TABLES, TableSpec

CATALOG = "catalog.duckdb"
# Bumped when the view definitions change shape, so old catalogs are refreshed on open.
CATALOG_VERSION = "3"
ENV_WORKSPACE = "DATAENGINE_WORKSPACE"


class WorkspaceError(RuntimeError):
    """A workspace problem a user can act on (missing workspace, lock held, bad table name)."""


def default_workspace_path() -> Path:
    return Path(os.environ.get(ENV_WORKSPACE) or "workspace")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_run_id(stage: str) -> str:
    return f"{stage}-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Workspace:
    """A workspace folder. Cheap to construct; opening DuckDB happens in `connect`."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def init(cls, root: str | os.PathLike[str] | None = None) -> Workspace:
        """Create (or upgrade) a workspace: folders, empty schema shards, catalog views."""
        ws = cls(root if root is not None else default_workspace_path())
        ws.root.mkdir(parents=True, exist_ok=True)
        (ws.root / "artifacts").mkdir(exist_ok=True)
        for spec in TABLES.values():
            ws._ensure_table(spec)
        ws.refresh_catalog()
        return ws

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None, create: bool = True) -> Workspace:
        """Open an existing workspace, creating it when `create` (the CLI's default for writers)."""
        ws = cls(root if root is not None else default_workspace_path())
        if not (ws.root / CATALOG).exists():
            if not create:
                raise WorkspaceError(
                    f"no workspace at {ws.root} (no {CATALOG}); run `dataengine init` or pass --workspace DIR"
                )
            return cls.init(ws.root)
        if ws._catalog_stale():
            cls.init(ws.root)
        return ws

    def table_dir(self, table: str) -> Path:
        if table not in TABLES:
            raise WorkspaceError(f"unknown table {table!r}; tables: {', '.join(sorted(TABLES))}")
        return self.root / "tables" / table

    @property
    def artifacts(self) -> Path:
        path = self.root / "artifacts"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _ensure_table(self, spec: TableSpec) -> None:
        d = self.root / "tables" / spec.name
        d.mkdir(parents=True, exist_ok=True)
        # An empty shard carrying the schema, so every view binds even before any stage ran and
        # columns added later still appear (union_by_name).
        marker = d / "_schema.parquet"
        if not marker.exists() or pq.read_schema(marker) != spec.schema:
            self._write_atomic(spec.schema.empty_table(), marker)

    # ---------------------------------------------------------------- writing
    def write_shard(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]] | pa.Table,
        name: str | None = None,
    ) -> Path:
        """Write one immutable shard of `table`; returns its path.

        `name` makes the shard deterministic (a stage that must not write a shard twice checks
        `shard_exists` first); by default a unique name is chosen.
        """
        spec = TABLES[table]
        tbl = self._to_arrow(spec, rows)
        name = name or f"{uuid.uuid4().hex}"
        path = self.table_dir(table) / f"{name}.parquet"
        self._write_atomic(tbl, path)
        return path

    def shard_exists(self, table: str, name: str) -> bool:
        return (self.table_dir(table) / f"{name}.parquet").exists()

    def shards(self, table: str) -> list[Path]:
        return sorted(p for p in self.table_dir(table).glob("*.parquet") if p.name != "_schema.parquet")

    @staticmethod
    def _to_arrow(spec: TableSpec, rows: Sequence[Mapping[str, Any]] | pa.Table) -> pa.Table:
        written = now_utc()
        if isinstance(rows, pa.Table):
            unknown = set(rows.column_names) - set(spec.schema.names)
            if unknown:
                raise WorkspaceError(f"table {spec.name}: unknown columns {sorted(unknown)}")
            cols = []
            for f in spec.schema:
                if f.name in rows.column_names:
                    cols.append(rows.column(f.name).cast(f.type))
                elif f.name == "written_at":
                    cols.append(pa.array([written] * rows.num_rows, type=f.type))
                else:
                    cols.append(pa.nulls(rows.num_rows, type=f.type))
            tbl = pa.Table.from_arrays(cols, schema=spec.schema)
            for text, source in spec.text_spans:
                i = tbl.schema.get_field_index
                kept, starts, lens = (tbl.column(c).to_pylist() for c in (text, f"{text}_start", f"{text}_len"))
                # Only rows that hold the text itself get a span (store_spans keeps the rest as
                # they are): the source column (the completion, ~all of the bytes) is read back
                # into Python for those rows alone, none when a writer spanned them already.
                todo = [k for k, t in enumerate(kept) if t is not None]
                if not todo:
                    continue
                sources = tbl.column(source).take(pa.array(todo, pa.int64())).to_pylist()
                for k, src in zip(todo, sources, strict=True):
                    kept[k], starts[k], lens[k] = span_of(src, kept[k], text == "answer")
                tbl = tbl.set_column(i(text), text, pa.array(kept, STR_T))
                tbl = tbl.set_column(i(f"{text}_start"), f"{text}_start", pa.array(starts, pa.int32()))
                tbl = tbl.set_column(i(f"{text}_len"), f"{text}_len", pa.array(lens, pa.int32()))
            return tbl
        names = spec.schema.names
        unknown = {k for r in rows[:1] for k in r} - set(names)
        if unknown:
            raise WorkspaceError(f"table {spec.name}: unknown columns {sorted(unknown)}")
        data = {n: [r.get(n) for r in rows] for n in names if n != "written_at"}
        for text, source in spec.text_spans:
            data[text], data[f"{text}_start"], data[f"{text}_len"] = store_spans(
                data[source], data[text], data[f"{text}_start"], data[f"{text}_len"], last=text == "answer")
        data["written_at"] = [written] * len(rows)
        return pa.Table.from_pydict(data, schema=spec.schema)

    def _write_atomic(self, tbl: pa.Table, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{tmp_tag()}.tmp")
        try:
            pq.write_table(tbl, tmp, compression="zstd")
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as e:
            # Remove the partial shard at once (on a full disk it is what fills it) and name the
            # path: errno 28 alone does not say which filesystem filled up.
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise WorkspaceError(f"cannot write {path}: {e.strerror or e}") from e
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def sweep_stale(self) -> dict[str, int]:
        """Remove temp shards of dead writers and record their `running` runs as `failed`.

        A writer's temp file names its host and pid (`tmp_tag`), so a later run on the same host
        knows whether the writer is gone; a temp file of another host (or an older, untagged
        one) is removed once it is older than STALE_TMP_S. Called when a stage starts a run.
        """
        removed = 0
        host = socket.gethostname()
        for tmp in (self.root / "tables").glob("*/.*.tmp"):
            try:
                old = time.time() - tmp.stat().st_mtime > STALE_TMP_S
            except OSError:
                continue
            dead = _tmp_owner_dead(tmp.name, host)
            if dead or (dead is None and old):
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed += 1
        failed = 0
        try:
            con = self.connect()
        except (duckdb.Error, WorkspaceError):
            return {"stale_tmp_removed": removed, "dead_runs_failed": 0}
        try:
            rows = con.execute(
                "select run_id, stage, config::varchar, started_at, pid from runs "
                "where status = 'running' and host = $h", {"h": host}
            ).fetchall()
        except duckdb.Error:
            rows = []
        finally:
            con.close()
        for run_id, stage, config, started_at, pid in rows:
            if pid is not None and not _pid_alive(int(pid)):
                run = Run.__new__(Run)
                run.ws, run.stage, run.run_id = self, stage, run_id
                run.config = json.loads(config) if config else {}
                run.started_at, run.counts = started_at, {"holder_died": 1}
                run._write("failed", now_utc())
                failed += 1
        return {"stale_tmp_removed": removed, "dead_runs_failed": failed}

    # ---------------------------------------------------------------- leases
    @contextlib.contextmanager
    def lease(self, name: str, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the lease `name` (a stage, a rank of a sampling run, an input file) while the body runs.

        Writers of the same work take the same lease, so the work is done once: the second waits,
        then plans against what the first stored and finds nothing left. The lease is an `flock`
        on `leases/<name>.lock`; the kernel drops it when its holder exits, so a crashed or killed
        holder loses it at once (no stale-lease timeout to tune). `wait=False` raises instead.
        """
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            # A spawned worker is re-running the parent's main script, which calls a stage at
            # import time: the lease is the parent's, so the worker would wait on it forever.
            raise WorkspaceError(
                f"lease {name!r} taken while a worker process imports the main script: a script "
                "that runs a stage at top level must guard it with `if __name__ == \"__main__\":` "
                "(stages start worker processes with spawn, which re-imports the main module)")
        folder = self.root / "leases"
        folder.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
        path = folder / f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:12]}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "unknown holder"
                if not wait:
                    raise WorkspaceError(f"lease {name!r} is held by {holder} ({path})") from None
                if on_wait is not None:
                    on_wait(f"waiting for lease {name!r} held by {holder}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {now_utc().isoformat()}".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    # ---------------------------------------------------------------- runs
    def start_run(self, stage: str, config: Mapping[str, Any] | None = None, run_id: str | None = None) -> Run:
        """Record a stage run as `running`; the returned `Run` records how it ended."""
        self.sweep_stale()
        return Run(self, stage, dict(config or {}), run_id or new_run_id(stage))

    # ---------------------------------------------------------------- reading
    def refresh_catalog(self) -> None:
        """(Re)create every view in catalog.duckdb. Needs the write lock for a moment."""
        con = self._connect_catalog(read_only=False)
        try:
            con.execute("create table if not exists _catalog_meta(key varchar primary key, value varchar)")
            for spec in TABLES.values():
                for stmt in table_view_sql(spec, self.root / "tables" / spec.name):
                    con.execute(stmt)
            for _name, sql in sqlfiles.views():
                con.execute(sql)
            con.execute(
                "insert or replace into _catalog_meta values ('root', $root), ('version', $v), ('tables', $t)",
                {"root": str(self.root), "v": CATALOG_VERSION, "t": self._tables_fingerprint()},
            )
        finally:
            con.close()

    def _tables_fingerprint(self) -> str:
        parts = [f"{s.name}:{s.schema}:{s.key}:{s.latest_wins}:{s.unique}" for s in TABLES.values()]
        parts += [sql for _n, sql in sqlfiles.views()]
        from dataengine.records import content_hash

        return content_hash(*parts)

    def _catalog_stale(self) -> bool:
        try:
            con = self._connect_catalog(read_only=True)
        except WorkspaceError:
            return False  # someone is refreshing right now; their views will do
        try:
            meta = dict(con.execute("select key, value from _catalog_meta").fetchall())
        except duckdb.Error:
            return True
        finally:
            con.close()
        return (
            meta.get("root") != str(self.root)
            or meta.get("version") != CATALOG_VERSION
            or meta.get("tables") != self._tables_fingerprint()
        )

    def _connect_catalog(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        path = self.root / CATALOG
        deadline = time.monotonic() + (2.0 if read_only else 10.0)
        while True:
            try:
                return duckdb.connect(str(path), read_only=read_only)
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise
                if time.monotonic() > deadline:
                    raise WorkspaceError(
                        f"{path} is locked by another process ({_lock_holder(e)}); "
                        "wait for it to finish, or close the DuckDB session that holds it"
                    ) from None
                time.sleep(0.1)

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with every table and named view defined.

        Read-only by default: many readers may run beside generation workers. `read_only=False`
        takes the catalog's write lock (for users' own scratch tables).
        """
        return self._connect_catalog(read_only=read_only)

    def connect_limited(self, allowed_dirs: Sequence[str | os.PathLike[str]], read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """A catalog connection that may touch files only inside `allowed_dirs` (plus the workspace).

        An in-memory DuckDB whose file access is limited and configuration locked before the
        catalog is attached, so no statement can lift the limit; its own instance, so the lock
        never leaks into this process's other connections to the catalog.
        """
        from dataengine.sqlguard import limit_access

        deadline = time.monotonic() + (2.0 if read_only else 10.0)
        while True:
            con = duckdb.connect(":memory:")
            try:
                # A big sort spills inside the workspace (the default `.tmp` in the current folder
                # is outside what the query may touch).
                con.execute("set temp_directory = $t", {"t": str(self.root / ".duckdb_tmp")})
                limit_access(con, [self.root, *allowed_dirs], lock=False)
                mode = " (read_only)" if read_only else ""
                con.execute(f"attach '{str(self.root / CATALOG).replace(chr(39), chr(39) * 2)}' as workspace{mode}")
                con.execute("use workspace")
                con.execute("set lock_configuration = true")
                return con
            except duckdb.IOException as e:
                con.close()
                if "lock" not in str(e).lower():
                    raise
                if time.monotonic() > deadline:
                    raise WorkspaceError(f"{self.root / CATALOG} is locked by another process ({_lock_holder(e)})") from None
                time.sleep(0.1)
            except BaseException:
                con.close()
                raise

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run one SQL statement with bound `$name` parameters on a fresh read-only connection."""
        con = self.connect()
        return con.execute(sql, dict(params or {}))

    def existing_ids(self, table: str, column: str) -> set[str]:
        """All values of an id column: what a resumable writer already has."""
        spec = TABLES[table]
        if column not in spec.schema.names:
            raise WorkspaceError(f"table {table} has no column {column}")
        glob = str(self.table_dir(table) / "*.parquet")
        con = duckdb.connect()
        try:
            rows = con.execute(
                f"select distinct {column} from read_parquet($g, union_by_name=true)",  # noqa: S608 - column is validated above
                {"g": glob},
            ).fetchall()
        finally:
            con.close()
        return {r[0] for r in rows if r[0] is not None}


STALE_TMP_S = 24 * 3600
STR_T = pa.string()
_INT32_MAX = 2**31 - 1


def store_spans(
    source: list[str | None], text: list[str | None], starts: list[int | None], lens: list[int | None], last: bool
) -> tuple[list[str | None], list[int | None], list[int | None]]:
    """Text stored once: each `text` that occurs in its row's `source` becomes (start, len) in code
    points and is not stored again; one that does not (or a NULL) is kept as it is.

    Any occurrence returns the same string, so the first (`last`: the last one, where an answer
    lies) is taken. A row that comes with a span already (copied from a shard) keeps it.
    """
    kept: list[str | None] = []
    out_s: list[int | None] = []
    out_l: list[int | None] = []
    for src, t, s0, n0 in zip(source, text, starts, lens, strict=True):
        k, s, n = span_of(src, t, last) if t is not None else (None, s0, n0)
        kept.append(k)
        out_s.append(s)
        out_l.append(n)
    return kept, out_s, out_l


def span_of(source: str | None, text: str | None, last: bool) -> tuple[str | None, int | None, int | None]:
    """(text kept, start, len) of one row (see `store_spans`)."""
    if text is None or source is None:
        return text, None, None
    # Where the split takes it from, found by a short probe and confirmed with one compare (a full
    # search of a 20 KB needle costs ten times more); the full search only when that fails.
    probe = text[-32:] if last else text[:32]
    i = source.rfind(probe) if last else source.find(probe)
    if last and i >= 0:
        i -= len(text) - len(probe)
    if i < 0 or not source.startswith(text, i):
        i = source.rfind(text) if last else source.find(text)
    if i < 0 or i + len(text) > _INT32_MAX:
        return text, None, None
    return None, i, len(text)


def store_row_spans(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """`row` with its spanned text replaced by spans, in place (a writer that ships rows to
    another process sends the text once)."""
    for text, source in TABLES[table].text_spans:
        if row.get(text) is not None:
            row[text], row[f"{text}_start"], row[f"{text}_len"] = span_of(row.get(source), row[text], text == "answer")
    return row


def span_columns(spec: TableSpec) -> list[str]:
    """The stored span columns of `spec` (hidden by its views)."""
    return [f"{t}_{x}" for t, _s in spec.text_spans for x in ("start", "len")]


def text_span_sql(text: str, source: str) -> str:
    """The view expression of a spanned text column: the span of `source`, or the stored text
    (old shards, and rows whose text is not a substring). DuckDB's substr counts code points,
    like Python's str indexes."""
    return (f"case when {text}_start is null then {text} "
            f"else substr({source}, {text}_start + 1, {text}_len) end")


def derive_text(tbl: pa.Table, spec: TableSpec, columns: Sequence[str]) -> pa.Table:
    """`tbl` (read from shards of `spec`, with the span columns when the shard has them) with the
    spanned text columns in `columns` filled in, as the views return them."""
    for text, source in spec.text_spans:
        if text not in columns or f"{text}_start" not in tbl.column_names:
            continue
        src, kept = tbl.column(source).to_pylist(), tbl.column(text).to_pylist()
        starts, lens = tbl.column(f"{text}_start").to_pylist(), tbl.column(f"{text}_len").to_pylist()
        full = [k if s is None else c[s : s + n] for c, k, s, n in zip(src, kept, starts, lens, strict=True)]
        tbl = tbl.set_column(tbl.schema.get_field_index(text), text, pa.array(full, STR_T))
    return tbl


def read_shard_columns(path: str | os.PathLike[str], table: str, columns: Sequence[str],
                       batch_size: int = 1024) -> Iterator[pa.RecordBatch]:
    """Batches of `columns` of one shard of `table`, spanned text derived (what a direct Parquet
    reader of a table must use instead of `ParquetFile.iter_batches`)."""
    spec = TABLES[table]
    pf = pq.ParquetFile(path)
    have = set(pf.schema_arrow.names)
    need = list(columns)
    for text, source in spec.text_spans:
        if text in columns and f"{text}_start" in have:
            need += [c for c in (source, f"{text}_start", f"{text}_len") if c not in need]
    for rb in pf.iter_batches(batch_size=batch_size, columns=need):
        yield from derive_text(pa.Table.from_batches([rb]), spec, columns).select(list(columns)).combine_chunks().to_batches()


def tmp_tag() -> str:
    """`host~pid~random`: lets a later run tell a dead writer's temp file from a live one's."""
    host = re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname())
    return f"{host}~{os.getpid()}~{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tmp_owner_dead(name: str, host: str) -> bool | None:
    """True/False when `name` is a temp file of a writer on this host; None when we cannot tell."""
    parts = name.split("~")
    safe_host = re.sub(r"[^A-Za-z0-9_-]+", "_", host)
    if len(parts) >= 3 and parts[0].endswith("." + safe_host) and parts[1].isdigit():
        return int(parts[1]) != os.getpid() and not _pid_alive(int(parts[1]))
    return None


def table_view_sql(spec: TableSpec, folder: Path) -> list[str]:
    """The two views of a table: `<name>_history` (every shard row) and `<name>` (current rows).

    A keyed table's current view yields each key once whatever concurrent or repeated writers
    did: the row of the newest shard wins (`written_at`, then shard file name, then row position
    break ties), so two readers always see the same row. Append-only logs (`latest_wins=False`)
    whose key is not unique by design (selections, hits, quarantine) stay plain unions.
    """
    glob = str(folder / "*.parquet").replace("'", "''")
    source = f"read_parquet('{glob}', union_by_name=true, filename=true, file_row_number=true)"
    replace = ", ".join([f"try_cast({c} as JSON) as {c}" for c in spec.json_columns]
                        + [f"{text_span_sql(t, src)} as {t}" for t, src in spec.text_spans])
    select = f"select * exclude ({', '.join(['filename', 'file_row_number', *span_columns(spec)])})"
    select += f" replace ({replace})" if replace else ""
    history = f"create or replace view {spec.name}_history as {select} from {source}"
    if spec.latest_wins or spec.unique:
        keys = ", ".join(spec.key)
        # The winners are picked over narrow columns, then the wide rows are semi-joined to them:
        # a window over the wide rows would hold every completion in memory at once.
        winners = (
            f"select filename, file_row_number from {source} "
            f"qualify row_number() over (partition by {keys} "
            "order by written_at desc, filename desc, file_row_number desc) = 1"
        )
        current = (
            f"create or replace view {spec.name} as {select.replace('select *', 'select s.*', 1)} "
            f"from {source} s semi join ({winners}) w using (filename, file_row_number)"
        )
    else:
        current = f"create or replace view {spec.name} as select * from {spec.name}_history"
    return [history, current]


def _lock_holder(err: Exception) -> str:
    msg = str(err)
    marker = "Conflicting lock is held in"
    return msg[msg.index(marker) :].strip() if marker in msg else "unknown holder"


# Runs of this process not finished yet: an error path a stage did not cover (a full disk while
# writing its last file) still ends with them recorded failed (`fail_open_runs`, called by the CLI).
_OPEN_RUNS: dict[str, Run] = {}


def fail_open_runs(status: str = "failed") -> int:
    """Record every unfinished run of this process as `status`; returns how many."""
    n = 0
    for run in list(_OPEN_RUNS.values()):
        with contextlib.suppress(Exception):
            run.finish(status=status)
            n += 1
    return n


class Run:
    """One stage run: a `runs` row written at start (`running`) and again at the end."""

    def __init__(self, ws: Workspace, stage: str, config: dict[str, Any], run_id: str):
        self.ws, self.stage, self.config, self.run_id = ws, stage, config, run_id
        self.started_at = now_utc()
        self.counts: dict[str, int] = {}
        self._write("running")
        _OPEN_RUNS[run_id] = self

    def _write(self, status: str, ended: dt.datetime | None = None) -> None:
        c = self.counts
        row = {
            "run_id": self.run_id,
            "stage": self.stage,
            "status": status,
            "config": json.dumps(self.config, default=str, sort_keys=True),
            "started_at": self.started_at,
            "ended_at": ended,
            "count_in": c.get("in"),
            "count_out": c.get("out"),
            "count_quarantined": c.get("quarantined"),
            "counts": json.dumps(c, sort_keys=True),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        self.ws.write_shard("runs", [row], name=f"{self.run_id}-{status}")

    def finish(self, counts: Mapping[str, int] | None = None, status: str = "ok") -> None:
        if counts:
            self.counts.update(counts)
        _OPEN_RUNS.pop(self.run_id, None)
        self._write(status, now_utc())

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.finish(status="failed" if exc_type is not KeyboardInterrupt else "interrupted")


def iter_batches(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
