"""What `dataengine sql` may run: one reading statement, files only inside the workspace.

Without `--write`, a query runs on a read-only catalog connection whose file access DuckDB itself
limits to the workspace and the directories the config allows (`workspace.sql_allowed_dirs`), with
the configuration locked so the statement cannot lift the limit; and only one statement of a
reading kind (SELECT, or EXPLAIN without ANALYZE, which would run it) is accepted. Every other kind
is refused with the reason. With `--write` anything goes except writing files into `tables/`, which
only the store writes (a stray shard there would become a row of every view).

>>> check_statement("select 1", write=False).type.name
'SELECT'
>>> check_statement("copy traces to 'x.csv'", write=False)
Traceback (most recent call last):
...
dataengine.sqlguard.SqlRefused: COPY writes files (COPY … TO) or tables (COPY … FROM); `dataengine sql` is read-only without --write
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import duckdb

_WHY = {
    "COPY": "COPY writes files (COPY … TO) or tables (COPY … FROM)",
    "EXPORT": "EXPORT DATABASE writes files",
    "SET": "SET/RESET/USE change the session's settings (they could lift the file-access limit)",
    "VARIABLE_SET": "SET VARIABLE changes the session",
    "PRAGMA": "PRAGMA changes settings or runs maintenance",
    "CALL": "CALL runs a procedure (CHECKPOINT, pragmas) that may change the database",
    "ATTACH": "ATTACH opens or creates another database file",
    "DETACH": "DETACH changes the attached databases",
    "LOAD": "INSTALL/LOAD fetch or load extensions (code)",
    "CREATE": "CREATE changes the catalog",
    "CREATE_FUNC": "CREATE FUNCTION changes the catalog",
    "INSERT": "INSERT changes data",
    "UPDATE": "UPDATE changes data",
    "DELETE": "DELETE changes data",
    "DROP": "DROP changes the catalog",
    "ALTER": "ALTER changes the catalog",
    "VACUUM": "VACUUM rewrites the database",
    "TRANSACTION": "transactions are only for --write sessions",
    "PREPARE": "PREPARE/EXECUTE are not needed for a one-statement query (bind $names with -p)",
    "EXECUTE": "PREPARE/EXECUTE are not needed for a one-statement query (bind $names with -p)",
    "MULTI": "this statement expands into several (PIVOT creates a type); write it as a SELECT",
    "UPDATE_EXTENSIONS": "UPDATE EXTENSIONS downloads code",
    "COPY_DATABASE": "COPY FROM DATABASE writes a database",
    "LOGICAL_PLAN": "not a query",
    "RELATION": "not a query",
    "ANALYZE": "ANALYZE writes statistics",
    "UNKNOWN": "this kind of statement (e.g. UPDATE EXTENSIONS) is not a query",
}
_READING = {"SELECT", "EXPLAIN"}
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


class SqlRefused(ValueError):
    """A statement `dataengine sql` will not run (the message says why)."""


def check_statement(text: str, write: bool, tables_dir: Path | None = None) -> duckdb.Statement:
    """The one statement of `text` when it may run; else SqlRefused naming the reason."""
    try:
        stmts = duckdb.extract_statements(text)
    except duckdb.Error as e:
        raise SqlRefused(f"SQL error: {e}") from None
    if not stmts:
        raise SqlRefused("no SQL statement given")
    if not write and len(stmts) != 1:
        raise SqlRefused(f"{len(stmts)} statements given; without --write `dataengine sql` runs exactly one")
    if write:
        for st in stmts:
            _check_tables_target(st, tables_dir)
        return stmts[0]
    st = stmts[0]
    kind = _kind(st)
    if kind not in _READING:
        why = _WHY.get(kind, f"{kind} is not a reading statement")
        raise SqlRefused(f"{why}; `dataengine sql` is read-only without --write")
    if kind == "EXPLAIN" and re.search(r"\banaly[sz]e\b", _COMMENT.sub(" ", st.query), re.I):
        raise SqlRefused("EXPLAIN ANALYZE runs the statement; `dataengine sql` is read-only without --write")
    return st


def _kind(st: duckdb.Statement) -> str:
    try:
        return st.type.name
    except ValueError:  # a statement kind this duckdb's Python enum does not name (UPDATE EXTENSIONS)
        return "UNKNOWN"


def _check_tables_target(st: duckdb.Statement, tables_dir: Path | None) -> None:
    # Even with --write nothing but the store writes shards: a COPY/EXPORT into tables/ is refused.
    if tables_dir is None or _kind(st) not in ("COPY", "EXPORT", "COPY_DATABASE", "ATTACH"):
        return
    root = os.path.realpath(tables_dir)
    for lit in re.findall(r"'((?:[^']|'')*)'", _COMMENT.sub(" ", st.query)):
        target = os.path.realpath(os.path.expanduser(lit.replace("''", "'")))
        if target == root or target.startswith(root + os.sep):
            raise SqlRefused(f"{_kind(st)} into {tables_dir} refused: only the store writes shards there")


def limit_access(con: duckdb.DuckDBPyConnection, allowed: Sequence[str | os.PathLike[str]], lock: bool = True) -> None:
    """Limit `con`'s file access to `allowed` folders (real paths) and lock its configuration."""
    dirs = []
    for d in allowed:
        real = os.path.realpath(d)
        dirs.append(real.rstrip(os.sep) + os.sep)
    con.execute("set allowed_directories = $d", {"d": dirs})
    con.execute("set enable_external_access = false")
    if lock:
        con.execute("set lock_configuration = true")
