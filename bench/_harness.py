"""Shared bench helpers: run a step in a fresh subprocess (wall time, peak RSS) and print a table.

Every bench script prints one table: each figure, and its ratio against a peer or baseline that
was measured in the same run on the same input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DATAENGINE_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "bench" / "out"


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    result: dict

    @property
    def cpu_seconds(self) -> float:
        """CPU time of the step and its child processes: steadier than wall time on a busy box."""
        return float(self.result["cpu_seconds"])


def run_isolated(code: str, timeout: float = 3600, python: str | None = None) -> Measured:
    """Run `code` in a fresh interpreter; it must print one JSON object on its last line.

    Wall time is measured inside the child around the work (`T0`/`T1` set by the code), and peak
    RSS is the child's ru_maxrss, so import time and the parent's memory do not count. `python`: another
    interpreter (the vLLM venv), else this one.
    """
    prog = textwrap.dedent(
        f"""
        import json, resource, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        T0 = time.perf_counter()
        def _cpu():
            a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
        C0 = _cpu()
        RESULT = {{}}
        """
    ) + textwrap.dedent(code) + textwrap.dedent(
        """
        RESULT.setdefault("seconds", time.perf_counter() - T0)
        RESULT.setdefault("cpu_seconds", _cpu() - C0)
        RESULT["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(RESULT))
        """
    )
    out = subprocess.run([python or sys.executable, "-c", prog], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"bench step failed:\n{out.stderr[-4000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return Measured(res["seconds"], res["peak_rss_mb"], res)


def kernel_note() -> str:
    """Which filter code the figures are of: the compiled word loops, or the pure-Python path."""
    out = subprocess.run([sys.executable, "-c", "from filters import text; print(text.KERNEL is not None)"],
                         capture_output=True, text=True, cwd=ROOT)
    return ("filters/_textkernel.c compiled" if out.stdout.strip() == "True"
            else "filters in pure Python (kernel not built, or DATAENGINE_PURE_PYTHON_FILTERS=1)")


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    """rows: (figure, value, ratio/baseline note)."""
    w0 = max(len(r[0]) for r in rows + [("figure", "", "")])
    w1 = max(len(r[1]) for r in rows + [("", "value", "")])
    print(f"\n## {title}\n")
    print(f"| {'figure'.ljust(w0)} | {'value'.rjust(w1)} | vs baseline |")
    print(f"|{'-' * (w0 + 2)}|{'-' * (w1 + 2)}|-------------|")
    for a, b, c in rows:
        print(f"| {a.ljust(w0)} | {b.rjust(w1)} | {c} |")
    print()
