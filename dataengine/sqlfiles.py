"""Loads the SQL shipped in `sql/`: one named query per file, views in `sql/views/`.

>>> "quarantine_summary" in named_queries()
True
"""

from __future__ import annotations

import os
import re
from importlib import resources


def _root():  # type: ignore[no-untyped-def]
    return resources.files("sql")


def named_queries() -> list[str]:
    """Names usable with `dataengine sql --query NAME` (files directly in sql/)."""
    return sorted(p.name[:-4] for p in _root().iterdir() if p.name.endswith(".sql"))


def load(name: str) -> str:
    """The text of `sql/NAME.sql` (or `sql/SUBDIR/NAME.sql` when `name` has a slash).

    Names are plain words joined by `/`: `..`, absolute paths and other characters are refused,
    so a name never resolves outside sql/.
    """
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*", name) or ".." in name:
        raise KeyError(f"bad query name {name!r}: a named query is NAME or SUBDIR/NAME inside sql/ "
                       f"(known: {', '.join(named_queries())})")
    path = _root()
    for part in name.split("/"):
        path = path / part
    path = path.with_name(path.name + ".sql") if not path.name.endswith(".sql") else path
    if not path.is_file():
        raise KeyError(f"no named query {name!r} in sql/; known: {', '.join(named_queries())}")
    real, root = os.path.realpath(str(path)), os.path.realpath(str(_root()))
    if not real.startswith(root + os.sep):  # a symlink in sql/ pointing elsewhere
        raise KeyError(f"named query {name!r} resolves outside sql/ ({real})")
    return path.read_text(encoding="utf-8")


def views() -> list[tuple[str, str]]:
    """(name, `create or replace view …` statement) for every file in sql/views/, sorted by name.

    Files are applied in name order, so a view that uses another sorts after it (prefix digits).
    """
    folder = _root() / "views"
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir(), key=lambda p: p.name):
        if p.name.endswith(".sql"):
            out.append((p.name[:-4], p.read_text(encoding="utf-8")))
    return out
