"""Replace a whole output folder atomically: build it beside the target, then swap it in.

A killed writer leaves the previous folder whole: until the swap it is untouched, the swap is one
`renameat2(RENAME_EXCHANGE)` (Linux), and where that call is missing the two-rename fallback
leaves the previous folder at `.NAME.old~…` which the next writer puts back first.

>>> stage = staging_dir(Path("out/r1-mix"))          # doctest: +SKIP
>>> (stage / "README.md").write_text("…")             # doctest: +SKIP
>>> publish(stage, Path("out/r1-mix"))                 # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from pathlib import Path

from dataengine.store import _tmp_owner_dead, tmp_tag

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _entries(final: Path, kind: str) -> list[Path]:
    return sorted(final.parent.glob(f".{final.name}.{kind}.*"))


def staging_dir(final: Path) -> Path:
    """A fresh empty folder beside `final` (same filesystem, so the swap is a rename).

    Leftovers of dead writers are removed first, and a previous folder a killed fallback swap
    left aside is put back.
    """
    final = final.resolve()
    if final == Path.cwd() or final in Path.cwd().parents or final.parent == final:
        raise ValueError(f"{final}: export into a folder of its own, not the current folder or one above it")
    if final.exists() and not final.is_dir():
        raise ValueError(f"{final}: exists and is not a folder; give a folder for the export")
    final.parent.mkdir(parents=True, exist_ok=True)
    import socket

    host = socket.gethostname()
    for old in _entries(final, "old"):
        if not final.exists():
            os.rename(old, final)  # a swap killed between its two renames: the old export comes back
        elif _tmp_owner_dead(old.name, host) is not False:
            shutil.rmtree(old, ignore_errors=True)
    for stale in _entries(final, "staging"):
        if _tmp_owner_dead(stale.name, host):
            shutil.rmtree(stale, ignore_errors=True)
    stage = final.parent / f".{final.name}.staging.{tmp_tag()}"
    stage.mkdir()
    return stage


def _exchange(a: Path, b: Path) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (22, 38, 95):  # EINVAL/ENOSYS/EOPNOTSUPP: the filesystem cannot exchange
            return False
        raise OSError(err, os.strerror(err), str(b))
    return True


def _link_copy(src: Path, dst: Path) -> None:
    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=link)
    elif src.is_symlink():
        os.symlink(os.readlink(src), dst)
    else:
        link(str(src), str(dst))


def publish(stage: Path, final: Path, keep: tuple[str, ...] = ()) -> None:
    """Swap `stage` in as `final`; the previous folder's entries not written anew are carried over
    (a user's own files beside an export survive), except `keep`-listed names the writer owns."""
    final = final.resolve()
    if final.exists():
        for entry in final.iterdir():
            if entry.name not in keep and not (stage / entry.name).exists():
                _link_copy(entry, stage / entry.name)  # hard links: the previous folder stays whole
        if not _exchange(stage, final):
            aside = final.parent / f".{final.name}.old.{tmp_tag()}"
            os.rename(final, aside)
            os.rename(stage, final)
            stage = aside
        shutil.rmtree(stage, ignore_errors=True)  # now the previous folder
    else:
        os.rename(stage, final)
    with contextlib.suppress(OSError):
        fd = os.open(final.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
