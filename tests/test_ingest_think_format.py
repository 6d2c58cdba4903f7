"""`--think-format auto` decides per file when the file says so: a file whose rows close `</think>`
without opening it is prompt-opened, truncated rows included."""

from __future__ import annotations

from pathlib import Path

from dataengine.ingest import IngestOptions, ingest

R1 = "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"
MAP = {"prompt": "question", "completion": "response", "model": "thinking_model"}


def test_prompt_opened_file_is_detected_with_its_truncated_rows(ws, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    rep = ingest(ws, shared_data / R1, IngestOptions(mapping=MAP))
    assert rep.think_format == "prompt_opened" and "detected for the file" in rep.summary()
    rows = dict(ws.query("select think_closed, count(*) from traces where think_format = 'prompt_opened' "
                         "group by all").fetchall())
    assert ws.query("select count(*) from traces where think_format <> 'prompt_opened'").fetchone()[0] == 0
    # the file's own flag: 343 rows never closed the block; they are truncated reasoning, not answers
    assert rows[False] == 343 and rows[True] == 1815
    assert ws.query("select count(*) from traces where not think_closed and answer <> ''").fetchone()[0] == 0
    assert ws.query("select counts->>'think_format_detected' from runs where stage = 'ingest'").fetchone()[0] == "prompt_opened"


def test_files_that_open_their_blocks_stay_per_row(ws, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    sky = ingest(ws, shared_data / "traces/sky_t1/amc23__Sky-T1-math-corrupt-0.5-32B.jsonl",
                 IngestOptions(mapping={"prompt": "question", "completion": "code"}))
    misc = ingest(ws, shared_data / "traces/thinking_llms_interp/r1_distill_llama8b_misc_prompts_500.json",
                  IngestOptions(mapping={"prompt": "question", "completion": "full_response"}, completion_after="<｜Assistant｜>"))
    assert sky.think_format is None and misc.think_format is None
    fmts = dict(ws.query("select source, list(distinct think_format) from traces group by all").fetchall())
    assert fmts == {"amc23__Sky-T1-math-corrupt-0.5-32B.jsonl": ["sky_t1"],
                    "r1_distill_llama8b_misc_prompts_500.json": ["think"]}
