"""The packaged examples (`dataengine/examples`, a link to the repository's `examples/` that the
wheel carries as real files), so a pip-installed user can run the quickstart:
`dataengine init --example quickstart && dataengine run examples/quickstart.yaml`."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path


def root() -> Path:
    return Path(str(resources.files("dataengine") / "examples"))


def names() -> list[str]:
    """Example configs by name: `quickstart`, `train/r1_zero_grpo`, …"""
    base = root()
    return sorted(str(p.relative_to(base).with_suffix("")) for p in base.rglob("*.yaml"))


def config_file(name: str) -> Path:
    return Path(name + ".yaml")


def copy_to(dest: Path) -> tuple[list[Path], list[Path]]:
    """Copy every example config and data file into `dest` (paths in a config are relative to its
    file, so they run from there). Existing files are kept, not overwritten: (written, kept)."""
    base = root()
    written, kept = [], []
    for src in sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in (".yaml", ".jsonl")):
        target = dest / src.relative_to(base)
        if target.exists():
            kept.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        written.append(target)
    return written, kept
