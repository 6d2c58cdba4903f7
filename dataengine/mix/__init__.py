"""The mix stage: non-reasoning SFT ingest, quota-based assembly (`run_mix`) and HF export (`run_export`).

Heavy imports (datasets, matplotlib) happen inside the functions that need them.
"""

from __future__ import annotations

from typing import Any


def run_mix(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from dataengine.mix.assemble import run_mix as _run_mix

    return _run_mix(*args, **kwargs)


def run_export(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from dataengine.mix.export import run_export as _run_export

    return _run_export(*args, **kwargs)


__all__ = ["run_export", "run_mix"]
