"""Shared helpers for the dedup tests and bench: real traces and planted near-duplicates."""

from __future__ import annotations

import json
import random
from pathlib import Path


def real_traces(shared_data: Path, limit: int | None = None) -> list[dict]:
    path = shared_data / "traces" / "thinking_llms_interp" / "r1distill_qwq_benchmark_traces.jsonl"
    rows = [json.loads(x) for x in open(path, encoding="utf-8")]
    return rows[:limit] if limit else rows


def mutate(text: str, rate: float, rng: random.Random) -> str:
    """Replace, drop or insert about `rate` of the words: a paraphrase-free near-duplicate."""
    words = text.split()
    out = []
    for w in words:
        r = rng.random()
        if r < rate / 3:
            continue
        if r < 2 * rate / 3:
            out.append(rng.choice(words))
            continue
        out.append(w)
        if r < rate:
            out.append(rng.choice(words))
    return " ".join(out)
