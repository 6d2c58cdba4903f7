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


def near_dup_sample(responses: list[str], n_base: int, seed: int) -> list[str]:
    """Real traces plus generated near-duplicates at many edit rates: pairs on both sides of 0.7."""
    rng = random.Random(seed)
    base = [t for t in responses if len(t) > 1500]
    rng.shuffle(base)
    base = base[:n_base]
    texts = list(base)
    for t in base[: n_base // 2]:
        for _ in range(rng.randint(1, 3)):
            texts.append(mutate(t, rng.uniform(0.0, 0.1), rng))
    return texts
