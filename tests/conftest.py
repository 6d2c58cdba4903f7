"""Shared fixtures: the real data beside the checkout and throwaway workspaces."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DATAENGINE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`: real public data. CI always has it; its absence is an error, not a skip."""
    assert SHARED_DATA.is_dir(), f"{SHARED_DATA} is missing: tests read real data from ../shared/data"
    return SHARED_DATA


@pytest.fixture()
def ws(tmp_path: Path):
    from dataengine.store import Workspace

    return Workspace.init(tmp_path / "ws")
