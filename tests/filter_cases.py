"""Real traces from ../shared/data as filter inputs, addressed by source and key (shared by the
filter tests and bench/bench_filter.py)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from dataengine.records import split_completion

QWQ = "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"
LLAMA = "traces/thinking_llms_interp/r1_distill_llama8b_misc_prompts_500.json"
SKY = "traces/sky_t1/"


def _row(completion: str, think_format: str, domain: str, prompt: str, **extra: Any) -> dict[str, Any]:
    s = split_completion(completion, think_format)
    return {"completion": completion, "reasoning": s.reasoning, "answer": s.answer, "think_closed": s.think_closed,
            "think_format": s.think_format, "domain": domain, "prompt": prompt, **extra}


@functools.cache
def load_all(data: Path) -> dict[str, dict[str, Any]]:
    """key → input row, for every trace of the three R1-distill/QwQ/Sky-T1 sources."""
    out: dict[str, dict[str, Any]] = {}
    with open(data / QWQ, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            key = f"qwq:{e['benchmark']}/{e['thinking_model']}/{e['idx']}"
            out[key] = _row(e["response"], "prompt_opened", "math", e["question"], key=key)
    for e in json.loads((data / LLAMA).read_text(encoding="utf-8")):
        key = f"llama:{e['question_id']}"
        # ingest --completion-after '<｜Assistant｜>': the chat template was rendered into the response
        completion = e["full_response"].split("<｜Assistant｜>", 1)[-1]
        out[key] = _row(completion, "auto", "general", e["question"], key=key, raw=e["full_response"])
    for path in sorted((data / SKY).glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                for i, c in enumerate(e["code"]):
                    key = f"sky:{path.stem}/{e['idx']}/{i}"
                    out[key] = _row(c, "auto", "math", e["question"], key=key)
    return out


def case(data: Path, key: str, **changes: Any) -> dict[str, Any]:
    row = dict(load_all(data)[key])
    row.update(changes)
    return row
