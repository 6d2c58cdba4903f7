"""Non-reasoning SFT sets: every shape converts, categories are assigned, counts reconcile."""

from __future__ import annotations

import json

import pytest

from dataengine.mix.categorize import categorize, is_trivial
from dataengine.mix.config import SftConfig
from dataengine.mix.sft_formats import SftRowError, to_conversation
from dataengine.mix.sft_ingest import ingest_sft


@pytest.mark.parametrize("name, rows, quarantined", [
    ("alpaca_en_demo_llamafactory.json", 999, 0),
    ("alpaca_zh_demo_llamafactory.json", 1000, 0),
    ("identity_llamafactory.json", 91, 0),
    ("medical_sft_1K_medicalgpt.jsonl", 1000, 0),
    ("sharegpt_zh_1K_medicalgpt.jsonl", 1000, 1),
    ("stanford_alpaca_seed_tasks.jsonl", 175, 0),
])
def test_every_shared_sft_set_ingests_and_reconciles(ws, shared_data, name, rows, quarantined):
    rep = ingest_sft(ws, shared_data / "sft" / name)
    assert rep.reconciles and rep.rows_in == rows and rep.quarantined == quarantined
    assert rep.taken == rows - quarantined and rep.traces_written == rep.taken
    n, buckets, fmts = ws.query(
        "select count(*), list(distinct metadata->>'bucket'), list(distinct think_format) from traces").fetchone()
    assert n == rep.taken and buckets == ["non_reasoning"] and fmts == ["none"]
    # the trace completion is the response itself, untouched
    again = ingest_sft(ws, shared_data / "sft" / name)
    assert again.taken == 0 and again.already_stored == rows - quarantined


def test_sharegpt_multi_turn_keeps_history_and_quarantines_unanswered_rows(ws, shared_data):
    path = shared_data / "sft" / "sharegpt_zh_1K_medicalgpt.jsonl"
    ingest_sft(ws, path, "sharegpt")
    line, field, reason = ws.query("select line, field, reason from quarantine").fetchone()
    raw = json.loads(path.read_text(encoding="utf-8").splitlines()[line - 1])
    assert reason == "no_assistant_turn" and field == "conversations"
    assert [t["from"] for t in raw["conversations"]] == ["human"]
    # a 16-turn conversation: its last assistant turn is the completion, the 14 turns before are history
    src = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    conv = next(r["conversations"] for r in src if len(r["conversations"]) == 16)
    got = ws.query("select t.completion, t.metadata->'history', p.prompt from traces t join prompts p using (prompt_id) "
                   "where t.completion = $c", {"c": conv[-1]["value"]}).fetchone()
    history = json.loads(got[1])
    assert got[2] == conv[-2]["value"] and len(history) == 14
    assert [h["content"] for h in history] == [t["value"] for t in conv[:14]]
    assert history[0]["role"] == "user" and history[1]["role"] == "assistant"


def test_alpaca_chinese_prompt_joins_instruction_and_input(ws, shared_data):
    path = shared_data / "sft" / "alpaca_zh_demo_llamafactory.json"
    src = json.loads(path.read_text(encoding="utf-8"))
    row = next(r for r in src if r["input"].strip())
    ingest_sft(ws, path, "alpaca", language="zh")
    prompt, completion, lang = ws.query(
        "select p.prompt, t.completion, t.language from traces t join prompts p using (prompt_id) where t.completion = $o",
        {"o": row["output"]}).fetchone()
    assert prompt == f"{row['instruction']}\n\n{row['input']}" and completion == row["output"] and lang == "zh"


def test_identity_set_is_self_cognition_by_source_and_placeholders_are_replaced(ws, shared_data):
    cfg = SftConfig(replacements={"{{name}}": "Tiny-R1", "{{author}}": "the dataengine team"})
    ingest_sft(ws, shared_data / "sft" / "identity_llamafactory.json", cfg=cfg)
    cats = dict(ws.query("select domain, count(*) from traces group by all").fetchall())
    assert cats == {"self_cognition": 91}
    assert ws.query("select count(*) from traces where completion like '%{{%'").fetchone()[0] == 0
    assert ws.query("select count(*) from traces where completion like '%Tiny-R1%'").fetchone()[0] >= 70
    trivial = {r[0] for r in ws.query("select p.prompt from traces t join prompts p using (prompt_id) "
                                      "where t.metadata->>'trivial' = 'true'").fetchall()}
    assert {"hi", "hello", "Thanks", "你好", "谢谢"} <= trivial and "Who are you?" not in trivial


def test_rule_categories_on_real_alpaca_rows(shared_data):
    src = json.loads((shared_data / "sft" / "alpaca_en_demo_llamafactory.json").read_text())
    cats = {r["instruction"]: categorize(r["instruction"]) for r in src}
    assert cats["Describe a process of making crepes."] == "writing"
    assert cats["Explain the differences between birds and mammals"] == "factual_qa"
    assert cats["Resolve the following problem: 9 - 2 x 3"] == "math"
    assert categorize("How would you generate random numbers between 1 and 10 in Java?") == "code"
    assert categorize("Translate 'good morning' into French.") == "translation"
    assert categorize("请把这段话翻译成英文") == "translation"
    assert is_trivial("Hello!") and is_trivial("你好啊！") and not is_trivial("Hello, explain gravity to me in detail")


def test_shapes_messages_and_seed_tasks_and_their_errors():
    c = to_conversation({"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"},
                                      {"role": "assistant", "content": "4"}]})
    assert (c.system, c.prompt, c.response, c.fmt) == ("be brief", "2+2?", "4", "messages")
    c = to_conversation({"id": "seed_task_0", "instruction": "Name a fruit.", "instances": [{"input": "", "output": "Apple"}]})
    assert (c.prompt, c.response, c.fmt) == ("Name a fruit.", "Apple", "seed_tasks")
    with pytest.raises(SftRowError) as e:
        to_conversation({"conversations": [{"from": "gpt", "value": "hi"}, {"from": "human", "value": "x"},
                                           {"from": "gpt", "value": "y"}]})
    assert e.value.reason == "turns_out_of_order"
    with pytest.raises(SftRowError) as e:
        to_conversation({"conversations": [{"from": "robot", "value": "hi"}]})
    assert e.value.reason == "unknown_role"
    with pytest.raises(SftRowError) as e:
        to_conversation({"text": "no shape"})
    assert e.value.reason == "unknown_sft_format"
    with pytest.raises(SftRowError) as e:
        to_conversation({"instruction": "x", "input": "", "output": "  "}, "alpaca")
    assert e.value.reason == "empty_completion"


def test_bad_rows_of_a_file_are_quarantined_with_line_and_reason(ws, tmp_path):
    p = tmp_path / "mixed.jsonl"
    p.write_text("\n".join([
        json.dumps({"instruction": "Say hi", "input": "", "output": "hi"}),
        "{broken",
        json.dumps({"conversations": [{"from": "human", "value": "q"}]}),
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}),
    ]) + "\n", encoding="utf-8")
    rep = ingest_sft(ws, p)
    assert (rep.rows_in, rep.taken, rep.quarantined) == (4, 2, 2)
    got = ws.query("select line, reason from quarantine order by line").fetchall()
    assert got == [(2, "invalid_json"), (3, "no_assistant_turn")]
