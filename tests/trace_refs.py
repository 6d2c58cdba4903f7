"""Real traces of every file in ../shared/data/traces, addressed by file and line/row (never
copied into the repo), as filter inputs — the way `dataengine ingest` maps each source:

| file | locator | completion | domain |
|---|---|---|---|
| thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl | line (1-based) | `response`, prompt-opened | math |
| thinking_llms_interp/r1_distill_llama8b_misc_prompts_500.json | array index | `full_response` after `<｜Assistant｜>` | general |
| sky_t1/*.jsonl | line (1-based) `#` index into `code` | as written (Sky-T1 markers or none) | math |
| s1k_gemini_5rows_curator.parquet | row (0-based) | `<think>` trajectory `</think>` attempt | math |
| huatuo_o1_medical_cot_demo200.json | array index | `<think>` Complex_CoT `</think>` Response | medical |
| reason_tool_use_demo_50_llamafactory.jsonl | line (1-based) | the last assistant turn with text: reasoning part + text part (rows with none are left out) | general |
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from filters.split import split_completion

QWQ = "thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"
LLAMA = "thinking_llms_interp/r1_distill_llama8b_misc_prompts_500.json"
S1K = "s1k_gemini_5rows_curator.parquet"
HUATUO = "huatuo_o1_medical_cot_demo200.json"
TOOLS = "reason_tool_use_demo_50_llamafactory.jsonl"


def _row(completion: str, think_format: str, domain: str, prompt: str) -> dict[str, Any]:
    s = split_completion(completion, think_format)
    return {"completion": completion, "reasoning": s.reasoning, "answer": s.answer, "think_closed": s.think_closed,
            "think_format": s.think_format, "domain": domain, "prompt": prompt}


@functools.cache
def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@functools.cache
def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@functools.cache
def _parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def load_ref(traces: Path, file: str, locator: str) -> dict[str, Any]:
    """The filter input for `file` (relative to ../shared/data/traces) at `locator`."""
    path = traces / file
    if file == QWQ:
        e = json.loads(_lines(path)[int(locator) - 1])
        return _row(e["response"], "prompt_opened", "math", e["question"])
    if file == LLAMA:
        e = _json(path)[int(locator)]
        return _row(e["full_response"].split("<｜Assistant｜>", 1)[-1], "auto", "general", e["question"])
    if file.startswith("sky_t1/"):
        line, idx = locator.split("#")
        e = json.loads(_lines(path)[int(line) - 1])
        return _row(e["code"][int(idx)], "auto", "math", e["question"])
    if file == S1K:
        e = _parquet(path)[int(locator)]
        return _row(f"<think>\n{e['gemini_thinking_trajectory']}\n</think>\n\n{e['gemini_attempt']}", "think", "math", e["question"])
    if file == HUATUO:
        e = _json(path)[int(locator)]
        return _row(f"<think>\n{e['Complex_CoT']}\n</think>\n\n{e['Response']}", "think", "medical", e["Question"])
    if file == TOOLS:
        e = json.loads(_lines(path)[int(locator) - 1])
        user = next(m for m in e["messages"] if m["role"] == "user")["content"][0]["value"]
        turn = [m for m in e["messages"] if m["role"] == "assistant" and any(p["type"] == "text" for p in m["content"])][-1]
        reasoning = "\n".join(p["value"] for p in turn["content"] if p["type"] == "reasoning")
        text = "\n".join(p["value"] for p in turn["content"] if p["type"] == "text")
        return _row(f"<think>\n{reasoning}\n</think>\n\n{text}", "think", "general", user)
    raise KeyError(f"{file}: not a trace file this loader knows")


def all_refs(traces: Path) -> list[tuple[str, str]]:
    """(file, locator) of every trace in every file."""
    out: list[tuple[str, str]] = []
    out += [(QWQ, str(i + 1)) for i in range(len(_lines(traces / QWQ)))]
    out += [(LLAMA, str(i)) for i in range(len(_json(traces / LLAMA)))]
    for p in sorted((traces / "sky_t1").glob("*.jsonl")):
        f = f"sky_t1/{p.name}"
        for i, line in enumerate(_lines(p)):
            out += [(f, f"{i + 1}#{j}") for j in range(len(json.loads(line)["code"]))]
    out += [(S1K, str(i)) for i in range(len(_parquet(traces / S1K)))]
    out += [(HUATUO, str(i)) for i in range(len(_json(traces / HUATUO)))]
    # Tool-use rows whose assistant never answers in text (only tool calls) have no answer to judge.
    out += [(TOOLS, str(i + 1)) for i, line in enumerate(_lines(traces / TOOLS))
            if any(m["role"] == "assistant" and any(p["type"] == "text" for p in m["content"])
                   for m in json.loads(line)["messages"])]
    return out
