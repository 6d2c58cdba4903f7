"""Imported only by the multiprocessing fork server of `pool.DeadlinePool` (its preload list).

Runs the pool's init function (named in $DATAENGINE_POOL_PRELOAD_INIT, e.g. Math-Verify's warm-up)
once in the fork server, so every worker forked from it starts warm.
"""

from __future__ import annotations

import contextlib
import os

from dataengine.verify.pool import PRELOAD_ENV, _resolve

for _path in filter(None, os.environ.get(PRELOAD_ENV, "").split(",")):
    # A failing init is not fatal here: each worker runs it again and reports the error.
    with contextlib.suppress(Exception):
        _resolve(_path)()
