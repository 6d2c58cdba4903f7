"""Shared pieces of the fault suite: the CLI as a real subprocess, real traces to corrupt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AIME = "traces/sky_t1/aime24__Sky-T1-math-correct-5K-32B-ckpt140.jsonl"
SKY_MAP = ["--map", "prompt=question", "--map", "completion=code", "--map", "reference_answer=gt", "--domain", "math"]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


def cli(ws: Path, *args: str, cwd: Path | None = None) -> list[str]:
    return [sys.executable, "-m", "dataengine", "--workspace", str(ws), *args]


def run_cli(ws: Path, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cli(ws, *args), env=env(), capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def start_cli(ws: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(cli(ws, *args), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def real_rows(shared_data: Path, k: int | None = None) -> list[dict]:
    """Real Sky-T1 AIME rows mapped to prompt/completion/reference_answer (the first `k`)."""
    rows = []
    for line in (shared_data / AIME).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        code = r["code"][0] if isinstance(r["code"], list) else r["code"]
        rows.append({"prompt": r["question"], "completion": code, "reference_answer": r["gt"]})
    return rows[:k] if k else rows
