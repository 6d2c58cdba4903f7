"""Chat rows with typed content parts (LLaMA-Factory's reasoning tool-use demo): reasoning parts
stay reasoning, tool calls go to metadata.tool_calls, earlier turns to metadata.history."""

from __future__ import annotations

import json
from pathlib import Path

from dataengine.ingest import IngestOptions, ingest

TOOLS = "traces/reason_tool_use_demo_50_llamafactory.jsonl"


def _meta(v):  # type: ignore[no-untyped-def]
    return json.loads(v) if isinstance(v, str) else v


def test_typed_parts_keep_reasoning_tool_calls_and_history(ws, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [json.loads(x) for x in (shared_data / TOOLS).read_text().splitlines()]
    rep = ingest(ws, shared_data / TOOLS, IngestOptions())
    assert rep.taken == 50 and rep.quarantined == 0
    got: dict[str, list] = {}
    for p, r, a, c, m in ws.query("select p.prompt, t.reasoning, t.answer, t.think_closed, t.metadata "
                                  "from traces t join prompts p using (prompt_id)").fetchall():
        got.setdefault(p, []).append((r, a, c, _meta(m)))
    n_calls = n_history = 0
    for row in rows:
        msgs = row["messages"]
        last_user = max(i for i, m in enumerate(msgs) if m["role"] == "user")
        prompt = "\n\n".join(p["value"] for p in msgs[last_user]["content"] if p["type"] == "text")
        final = msgs[-1]
        # the answer is the last assistant turn's text: no tool-call JSON, no reasoning glued on
        want = "\n\n".join(p["value"] for p in final["content"] if p["type"] == "text").strip()
        if "</think>" in want:
            # One real row's text part carries a leaked `<thread>…</thread>\n</think>` block before
            # its reply: the one split takes the answer after the last marker (and the format filter
            # calls the repeated tag `think_tags_repeated`), never a second meaning.
            want = want.rsplit("</think>", 1)[1].strip()
        match = [g for g in got[prompt] if g[1] == want]
        assert len(match) == 1, (prompt[:80], [g[1][:80] for g in got[prompt]])
        reasoning, answer, closed, meta = match[0]
        assert closed is True
        for p in final["content"]:
            if p["type"] == "reasoning":
                assert p["value"].strip()[:200] in reasoning
        calls = [p["value"] for m in msgs[last_user + 1:] for p in m["content"] if p["type"] == "tool_call"]
        assert [c["call"] for c in meta.get("tool_calls", [])] == [json.loads(c) for c in calls]
        assert '{"name"' not in answer
        earlier = [m for m in msgs[:last_user] if m["role"] != "system"]
        assert len(meta.get("history", [])) == len(earlier)
        n_calls += bool(calls)
        n_history += bool(earlier)
    assert n_calls >= 30 and n_history >= 16
