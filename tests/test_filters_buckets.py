"""Non-reasoning rows (SFT sets) are scored with their own profile: no think block required,
truncation, readability and language still apply; the filter stage counts the buckets apart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dataengine.config import load_config_dict
from dataengine.filter_stage import run_filter
from dataengine.records import Trace
from filters import run_filters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trace_refs import LLAMA, load_ref  # noqa: E402

ALPACA = "sft/alpaca_en_demo_llamafactory.json"


def _alpaca(shared_data: Path) -> list[dict]:
    rows = json.loads((shared_data / ALPACA).read_text(encoding="utf-8"))
    return [{"completion": e["output"], "think_format": "none", "domain": "general",
             "prompt": f"{e['instruction']} {e['input']}".strip(), "bucket": "non_reasoning"} for e in rows]


def test_sft_rows_pass_the_non_reasoning_profile_and_fail_the_reasoning_one(shared_data):
    rows = _alpaca(shared_data)
    nr = run_filters(rows, ["format"])
    reasons = [r["format"].reason for r in nr]
    assert "no_think_block" not in reasons and "missing_final_answer" not in reasons
    assert reasons.count(None) >= 0.97 * len(rows), {r: reasons.count(r) for r in set(reasons)}
    as_reasoning = run_filters([dict(r, bucket="reasoning") for r in rows[:50]], ["format"])
    assert {r["format"].reason for r in as_reasoning} == {"no_think_block"}


def test_truncation_still_applies_to_sft_rows(shared_data):
    rows = _alpaca(shared_data)
    # row 463 ends "…its memory serves as a reminder of the importance of"; row 0 is complete
    got = run_filters([rows[463], rows[0]], ["format"])
    assert [g["format"].reason for g in got] == ["truncated_mid_sentence", None]


def test_the_filter_stage_counts_buckets_apart(shared_data, ws):
    sft = _alpaca(shared_data)[:20]
    traces = [Trace(prompt_id="sft", completion=r["completion"], sample_idx=i, model="alpaca", think_format="none",
                    domain="general", metadata={"bucket": "non_reasoning"}).to_row() for i, r in enumerate(sft)]
    for i, loc in enumerate(["244", "35", "103"]):  # complete; cut off in a list (twice)
        r = load_ref(shared_data / "traces", LLAMA, loc)
        traces.append(Trace(prompt_id=f"q{loc}", completion=r["completion"], sample_idx=i, model="llama",
                            think_format=r["think_format"], domain="general").to_row())
    ws.write_shard("traces", traces)
    res = run_filter(ws, load_config_dict({"filter": {"processes": 1, "filters": ["format", "readability"]}}))
    assert res["by_bucket"]["non_reasoning"]["in"] == 20 and res["by_bucket"]["reasoning"]["in"] == 3
    assert res["by_bucket"]["reasoning"]["reasons"].get("format:truncated_mid_sentence") == 2
    assert res["by_bucket"]["reasoning"]["out"] == 1
    assert "format:no_think_block" not in res["by_bucket"]["non_reasoning"]["reasons"]
    again = run_filter(ws, load_config_dict({"filter": {"processes": 1, "filters": ["format", "readability"]}}),
                       rethreshold=True)
    assert again["by_bucket"] == res["by_bucket"]  # re-decided from stored scores, same buckets
