"""The filter stage on a real workspace: scoring on 2 processes, resume, re-threshold from stored
scores, the funnel and accepted_traces views, bad rows that must not stop the stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dataengine.config import ConfigError, load_config, load_config_dict
from dataengine.filter_stage import run_filter
from dataengine.ingest import IngestOptions, ingest
from dataengine.records import Trace
from dataengine.store import Workspace

LLAMA = "traces/thinking_llms_interp/r1_distill_llama8b_misc_prompts_500.json"


def _bad_traces() -> list[dict]:
    rows = [
        Trace(prompt_id="bad", completion="", sample_idx=0, model="bad", domain="math").to_row(),
        Trace(prompt_id="bad", completion="<think>a\x00b c d</think>so \x00 it is \\boxed{1}", sample_idx=1, model="bad", domain="math").to_row(),
        Trace(prompt_id="bad", completion="<think>$$x^2$$</think>$$\\boxed{2}$$", sample_idx=2, model="bad", domain="math").to_row(),
        Trace(prompt_id="bad", completion=("word " * 2_000_000), sample_idx=3, model="bad", domain="general").to_row(),
    ]
    none_row = Trace(prompt_id="bad", completion="x", sample_idx=4, model="bad").to_row()
    none_row.update(completion=None, reasoning=None, answer=None)
    return [*rows, none_row]


@pytest.fixture(scope="module")
def filtered(shared_data, tmp_path_factory) -> tuple[Workspace, dict]:
    ws = Workspace.init(tmp_path_factory.mktemp("filter") / "ws")
    rep = ingest(ws, shared_data / LLAMA, IngestOptions(
        mapping={"prompt": "question", "completion": "full_response"},
        completion_after="<｜Assistant｜>", domain="general"))
    assert rep.taken == 500
    ws.write_shard("traces", _bad_traces())
    cfg = load_config_dict({"filter": {"processes": 2, "batch_size": 128}})
    return ws, run_filter(ws, cfg)


def _copy(ws: Workspace, tmp_path: Path) -> Workspace:
    shutil.copytree(ws.root, tmp_path / "ws")
    return Workspace.open(tmp_path / "ws")


def test_every_trace_gets_three_verdicts_on_two_processes(filtered):
    ws, res = filtered
    assert res["in"] == 505 and res["shards"] == 4  # 128 traces per shard
    n = ws.query("select filter, count(*), count(distinct trace_id) from filter_results group by all order by 1").fetchall()
    assert n == [("format", 505, 505), ("language_mixing", 505, 505), ("readability", 505, 505)]
    assert res["passed_by_filter"]["format"] + res["failed_by_filter"]["format"] == 505
    # the known real case of language mixing (question 215, "伴随元素") is flagged
    row = ws.query("""select f.reason, f.scores->>'other_languages' from filter_results f join traces t using (trace_id)
                      where f.filter = 'language_mixing' and t.metadata->>'question_id' = '215'""").fetchone()
    assert row[0] == "foreign_script_words_above_max" and json.loads(row[1]) == {"zh": 4}
    lm_failed = ws.query("select count(*) from filter_results where filter = 'language_mixing' and not passed").fetchone()
    assert lm_failed == (1,)


def test_bad_rows_get_verdicts_and_do_not_stop_the_stage(filtered):
    ws, _ = filtered
    rows = ws.query("""select t.sample_idx, f.filter, f.passed, f.reason from filter_results f join traces t using (trace_id)
                       where t.prompt_id = 'bad' order by 1, 2""").fetchall()
    got = {(i, f): (p, r) for i, f, p, r in rows}
    assert len(got) == 15
    assert got[(0, "format")] == (False, "empty_completion")
    assert got[(1, "format")] == (True, None)  # NUL bytes are repaired and recorded
    assert got[(2, "readability")] == (False, "missing_summary")  # only LaTeX
    assert got[(3, "format")] == (False, "no_think_block")  # 10 MB
    assert got[(4, "format")] == (False, "empty_completion")  # NULL completion
    assert not any(r == "filter_error" for _p, r in got.values())


def test_rerun_resumes_and_rethreshold_redecides_from_stored_scores(filtered, tmp_path):
    ws = _copy(filtered[0], tmp_path)
    again = run_filter(ws, load_config_dict({"filter": {"processes": 1}}))
    assert again["in"] == 0  # nothing left to score
    before = dict(ws.query("select trace_id, scores::varchar from filter_results where filter = 'language_mixing'").fetchall())
    cfg = load_config_dict({"filter": {"language_mixing": {"max_foreign_script_words": 10},
                                       "readability": {"min_summary_words": None}}})
    res = run_filter(ws, cfg, rethreshold=True)
    assert res["in"] == 505 and res["failed_by_filter"].get("language_mixing", 0) == 0
    after = dict(ws.query("select trace_id, scores::varchar from filter_results where filter = 'language_mixing'").fetchall())
    assert after == before  # same scores, new verdicts
    hashes = ws.query("select count(distinct config_hash) from filter_results_history").fetchone()[0]
    assert hashes == 2
    assert ws.query("select count(*) from filter_results where reason = 'missing_summary'").fetchone() == (0,)


def test_one_process_and_two_processes_agree(filtered, tmp_path):
    ws = _copy(filtered[0], tmp_path)
    before = ws.query("select trace_id, passed, reason from filter_results where filter = 'readability' order by 1").fetchall()
    res = run_filter(ws, load_config_dict({"filter": {"processes": 1}}), only="readability", rescore=True)
    assert res["in"] == 505
    assert ws.query("select trace_id, passed, reason from filter_results where filter = 'readability' order by 1").fetchall() == before


def test_funnel_and_accepted_traces_views(filtered, tmp_path):
    ws, res = filtered
    funnel = ws.query("select step, filter, traces_in, passed, rejected from filter_funnel order by step").fetchall()
    assert [f[1] for f in funnel] == ["format", "readability", "language_mixing"]
    assert funnel[0][2] == 505
    for (_s, _f, t_in, passed, rejected), nxt in zip(funnel, [*funnel[1:], None]):
        assert t_in == passed + rejected
        if nxt:
            assert nxt[2] == passed
    accepted = ws.query("select count(*) from accepted_traces").fetchone()[0]
    assert accepted == funnel[-1][3] == res["out"]
    # a trace that was never filtered is not accepted
    ws2 = _copy(ws, tmp_path)
    ws2.write_shard("traces", [Trace(prompt_id="late", completion="<think>ok</think>fine").to_row()])
    assert ws2.query("select count(*) from accepted_traces").fetchone()[0] == accepted
    # of the bad rows only the one whose NUL bytes were repaired is acceptable
    assert ws.query("select sample_idx from accepted_traces where prompt_id = 'bad'").fetchall() == [(1,)]


def test_filter_config_is_validated_with_file_and_field(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("filter:\n  readability:\n    max_paragraph_words: many\n")
    with pytest.raises(ConfigError, match=r"filter\.readability\.max_paragraph_words: expected int"):
        load_config(bad)
    bad.write_text("filter:\n  language_mixing:\n    by_language: {zh: {min_share: 0.5}}\n")
    with pytest.raises(ConfigError, match="unknown thresholds"):
        load_config(bad)
    bad.write_text("filter:\n  filters: [format, nope]\n")
    with pytest.raises(ConfigError, match="unknown"):
        load_config(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text("filter:\n  readability:\n    max_paragraph_words: null\n    by_domain: {code: {max_code_blocks: null}}\n")
    th = load_config(ok).section("filter").readability
    assert th.max_paragraph_words is None and th.resolve("code", None).max_code_blocks is None
