"""Dump every filter decision on the real data, to prove a speed change changed none of them.

Scores every trace of ../shared/data/traces (R1-distill/QwQ/Sky-T1, HuatuoGPT-o1, the tool-use
set, s1K) and the SFT sets of ../shared/data/sft (as `non_reasoning` rows) with all three
filters, plus seeded R1-length simulated traces, and writes one JSON line per
(key, filter): passed, reason and the full stored scores. Then `--diff A B` counts the lines
that differ.

    PYTHONPATH=/work/main python bench/filter_decisions.py /tmp/before.jsonl   # old code
    PYTHONPATH=$PWD      python bench/filter_decisions.py /tmp/after.jsonl
    python bench/filter_decisions.py --diff /tmp/before.jsonl /tmp/after.jsonl

`--stage` also runs the filter stage (DuckDB in, shards out; 1 and 2 processes) on the QwQ
traces and dumps its `filter_results` by prompt and sample, so the worker plumbing is compared too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _rows() -> list[dict]:
    sys.path.insert(0, str(ROOT / "tests"))
    import pyarrow.parquet as pq
    from filter_cases import load_all

    from dataengine.records import split_completion

    rows = [dict(r) for r in load_all(SHARED).values()]
    for i, e in enumerate(json.loads((SHARED / "traces/huatuo_o1_medical_cot_demo200.json").read_text("utf-8"))):
        rows.append({"key": f"huatuo:{i}", "reasoning": e["Complex_CoT"], "answer": e["Response"],
                     "completion": f"<think>{e['Complex_CoT']}</think>{e['Response']}", "domain": "medical",
                     "prompt": e["Open-ended Verifiable Question"] or e["Question"]})
    for i, line in enumerate(open(SHARED / "traces/reason_tool_use_demo_50_llamafactory.jsonl", encoding="utf-8")):
        msgs = json.loads(line)["messages"]
        user = next(c["value"] for m in msgs if m["role"] == "user" for c in m["content"])
        for j, m in enumerate(m for m in msgs if m["role"] == "assistant"):
            reasoning = "".join(c["value"] for c in m["content"] if c["type"] == "reasoning")
            answer = "".join(c["value"] for c in m["content"] if c["type"] == "text")
            rows.append({"key": f"tool:{i}/{j}", "reasoning": reasoning, "answer": answer, "domain": "tool_use",
                         "completion": f"<think>{reasoning}</think>{answer}", "prompt": user})
    for i, e in enumerate(pq.read_table(SHARED / "traces/s1k_gemini_5rows_curator.parquet").to_pylist()):
        c = f"<think>{e['gemini_thinking_trajectory']}</think>{e['gemini_attempt']}"
        s = split_completion(c, "think")
        rows.append({"key": f"s1k:{i}", "completion": c, "reasoning": s.reasoning, "answer": s.answer,
                     "domain": "math", "prompt": e["question"]})
    sft: list[tuple[str, str, str]] = []
    for name in ("alpaca_en_demo_llamafactory", "alpaca_zh_demo_llamafactory", "identity_llamafactory"):
        for i, e in enumerate(json.loads((SHARED / f"sft/{name}.json").read_text("utf-8"))):
            sft.append((f"{name}:{i}", f"{e['instruction']} {e['input']}".strip(), e["output"]))
    for name in ("medical_sft_1K_medicalgpt", "sharegpt_zh_1K_medicalgpt"):
        for i, line in enumerate(open(SHARED / f"sft/{name}.jsonl", encoding="utf-8")):
            conv = json.loads(line)["conversations"]
            sft += [(f"{name}:{i}/{j}", conv[j - 1]["value"], c["value"]) for j, c in enumerate(conv)
                    if c["from"] == "gpt" and j > 0]
    for line in open(SHARED / "sft/stanford_alpaca_seed_tasks.jsonl", encoding="utf-8"):
        e = json.loads(line)
        for j, inst in enumerate(e["instances"]):
            sft.append((f"seed:{e['id']}/{j}", f"{e['instruction']} {inst['input']}".strip(), inst["output"]))
    for key, prompt, out in sft:
        rows.append({"key": key, "completion": out, "think_format": "none", "domain": "general",
                     "prompt": prompt, "bucket": "non_reasoning"})
        # the same text as a chain of thought: exercises the language/readability paths on Chinese
        rows.append({"key": key + "#cot", "reasoning": out, "answer": out, "prompt": prompt, "domain": "general"})
    return rows + _simulated(300)


def _simulated(n: int) -> list[dict]:
    from dataengine.demo_problems import demo_prompts
    from dataengine.engines.base import GenerationRequest, SamplingParams
    from dataengine.engines.simulated import SimulatedEngine
    from dataengine.records import split_completion

    eng = SimulatedEngine(model="simulated-r1", seed=0, length="r1")
    rows = []
    for p in demo_prompts(n // 4, seed=0):
        res = eng.generate([GenerationRequest(p.prompt_id, prompt=p.prompt, params=SamplingParams(n=4, max_tokens=1 << 20))])[0]
        for k, c in enumerate(res.completions):
            s = split_completion(c.text, "think")
            rows.append({"key": f"sim:{p.prompt_id}/{k}", "completion": c.text, "reasoning": s.reasoning,
                         "answer": s.answer, "think_closed": s.think_closed, "think_format": s.think_format,
                         "finish_reason": c.finish_reason, "domain": "math", "prompt": p.prompt})
    return rows


def dump(out: Path, batch: int = 200) -> int:
    from filters import run_filters

    rows = _rows()
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        for i in range(0, len(rows), batch):
            chunk = rows[i:i + batch]
            for r, res in zip(chunk, run_filters(chunk)):
                for name, fr in res.items():
                    f.write(json.dumps({"key": r["key"], "filter": name, "passed": fr.passed, "reason": fr.reason,
                                        "scores": fr.scores}, ensure_ascii=False, sort_keys=True, default=str) + "\n")
                    n += 1
    return n


def dump_stage(out: Path, processes: int) -> int:
    import tempfile

    from dataengine.config import load_config_dict
    from dataengine.filter_stage import run_filter
    from dataengine.ingest import IngestOptions, ingest
    from dataengine.store import Workspace

    src = SHARED / "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        ingest(ws, str(src), IngestOptions(mapping={"prompt": "question", "completion": "response"},
                                           think_format="prompt_opened", domain="math"))
        res = run_filter(ws, load_config_dict({"filter": {"processes": processes, "batch_size": 250}}))
        con = ws.connect()
        q = con.sql("""select p.prompt, t.completion, f.filter, f.passed, f.reason, f.scores::varchar as scores
                       from filter_results f join traces t using (trace_id) join prompts p using (prompt_id)
                       order by 1, 2, 3""")
        n = 0
        with open(out, "w", encoding="utf-8") as f:
            for prompt, completion, name, passed, reason, scores in q.fetchall():
                key = f"{len(prompt)}:{len(completion)}:{completion[-40:]!r}"
                f.write(json.dumps({"key": key, "filter": name, "passed": passed, "reason": reason,
                                    "scores": json.loads(scores)}, ensure_ascii=False, sort_keys=True) + "\n")
                n += 1
        con.close()
        counts = {k: res[k] for k in ("in", "out", "reasons")}
        print(json.dumps(counts, sort_keys=True), file=sys.stderr)
    return n


def diff(a: Path, b: Path, show: int = 5) -> int:
    la = open(a, encoding="utf-8").read().splitlines()
    lb = open(b, encoding="utf-8").read().splitlines()
    if len(la) != len(lb):
        print(f"line counts differ: {len(la)} vs {len(lb)}")
    bad = [(x, y) for x, y in zip(la, lb) if x != y]
    for x, y in bad[:show]:
        jx, jy = json.loads(x), json.loads(y)
        keys = sorted(k for k in set(jx["scores"]) | set(jy["scores"]) if jx["scores"].get(k) != jy["scores"].get(k))
        print(jx["key"], jx["filter"], (jx["passed"], jx["reason"]), (jy["passed"], jy["reason"]), keys[:8])
    print(f"{len(bad) + abs(len(la) - len(lb))} of {max(len(la), len(lb))} decisions differ")
    return len(bad) + abs(len(la) - len(lb))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--diff", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    ap.add_argument("--stage", type=int, metavar="PROCESSES", help="dump the filter stage's results instead")
    args = ap.parse_args()
    if args.diff:
        sys.exit(1 if diff(*args.diff) else 0)
    n = dump_stage(args.out, args.stage) if args.stage else dump(args.out)
    print(f"{n} decisions -> {args.out}")


if __name__ == "__main__":
    main()
