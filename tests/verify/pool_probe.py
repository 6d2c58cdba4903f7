"""Task and init functions for the pool tests: they report which process imported and initialised them."""

from __future__ import annotations

import os

IMPORTED_IN = os.getpid()
INIT_IN: list[int] = []


def init() -> None:
    INIT_IN.append(os.getpid())


def probe(item: int) -> dict[str, object]:
    return {"item": item, "pid": os.getpid(), "imported_in": IMPORTED_IN, "init_in": list(INIT_IN)}
