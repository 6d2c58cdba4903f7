"""The one split (filters.split) and the one final-answer extractor (filters.answer), on real
traces: every stage sees the same reasoning and answer, and the verifier grades what the format
filter found."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from dataengine.records import Trace
from dataengine.verify.math import answer_part, extract_final_answer, grade_math
from filters import run_filters
from filters.answer import locate_final_answer
from filters.split import split_completion
from trainers.rewards import _answer_after_think, think_format_reward

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trace_refs import all_refs, load_ref  # noqa: E402


def _four(sp):
    return sp.reasoning, sp.answer, sp.think_closed, sp.think_format


def test_formats_and_problems():
    assert _four(split_completion("<think>a</think>b")) == ("a", "b", True, "think")
    assert _four(split_completion("a</think>b")) == ("a", "b", True, "prompt_opened")
    sky = "<|begin_of_thought|>\n\nr\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\nx = 2\n\n<|end_of_solution|>"
    assert _four(split_completion(sky)) == ("r", "x = 2", True, "sky_t1")
    assert _four(split_completion("just text")) == ("", "just text", None, "none")
    assert _four(split_completion("<think>cut off", "think")) == ("cut off", "", False, "think")
    # repeated / out-of-order markers: a verdict, and one meaning (the answer after the last close)
    rep = split_completion("<think>a</think>b</think>c")
    assert (rep.answer, rep.problem) == ("c", "think_tags_repeated")
    assert split_completion("a</think>b<think>c", "think").problem == "think_tags_out_of_order"
    assert split_completion("<think>a</think>b<|end_of_thought|>c").problem == "think_tags_repeated"
    with pytest.raises(ValueError, match="unknown think format"):
        split_completion("x", "nope")


def test_every_stage_sees_the_same_split_on_real_traces(shared_data):
    traces = shared_data / "traces"
    refs = random.Random(5).sample(all_refs(traces), 300)
    rows = [load_ref(traces, *r) for r in refs]
    verdicts = run_filters([{"completion": r["completion"], "domain": r["domain"]} for r in rows], ["format"])
    for ref, r, v in zip(refs, rows, verdicts):
        c = r["completion"]
        sp = split_completion(c)
        t = Trace(prompt_id="p", completion=c)
        assert (t.reasoning, t.answer, t.think_closed) == (sp.reasoning, sp.answer, sp.think_closed), ref
        assert v["format"].scores["answer_chars"] == len(sp.answer), ref
        if sp.think_closed is False:
            assert _answer_after_think(c) == ""
        else:
            assert _answer_after_think(c) == sp.answer == answer_part(c).strip(), ref


def test_reward_format_uses_the_split():
    assert think_format_reward(["q"] * 3, ["<think>a</think>b", "<think>a</think>b</think>c", "a</think>b"]) == [1.0, 0.0, 0.0]
    assert think_format_reward(["q"], ["a</think>b"], think_opened_in_prompt=True) == [1.0]


@pytest.mark.parametrize("text, answer, method", [
    ("At first I thought \\boxed{3}, but checking again the count is \\boxed{5}", "5", "boxed"),
    ("The roots are \\boxed{2} and \\boxed{3}.", "2, 3", "boxed"),
    ("So \\boxed{4}. Wait, actually it is \\boxed{6}.", "6", "boxed"),
    ("**Answer:** Baldur gets **55 liters**", "55 liters", "answer_label"),
    ("Thus the final answer is $\\frac{3}{4}$.", "\\frac{3}{4}", "final_answer_phrase"),
    ("Thus, the final answers are:\n- NH4OH: 35.06 g/mol\n- NaHCO3: 84.01 g/mol", "- NH4OH: 35.06 g/mol\n- NaHCO3: 84.01 g/mol", "final_answer_phrase"),
    ("\\[ x = 2 \\]\n\nThis is the final answer.", "x = 2", "formula_then_final_statement"),
    ("Adding up:\n\n**Total outfits Laurel has:** 87", "87", "final_line_label"),
])
def test_the_extractor(text, answer, method):
    got = locate_final_answer(text)
    assert (got.answer, got.method) == (answer, method)


def test_verifier_grades_what_the_extractor_found():
    assert grade_math("5", "At first I thought \\boxed{3}, but checking again the count is \\boxed{5}").verdict == "correct"
    assert grade_math("\\{2, 3\\}", "The roots are \\boxed{2} and \\boxed{3}.").verdict == "correct"
    assert grade_math("55", "**Answer:** Baldur gets **55 liters**").verdict == "correct"
    # an answer stated in words is never graded as an earlier number
    r = grade_math("12", "There were 0 left at first; the answer is twelve.")
    assert (r.verdict, r.answer) == ("correct", "12")
    r = grade_math("3", "x = 0 initially. Therefore, the number of solutions is three.")
    assert r.verdict == "correct"
    r = grade_math("4", "So 0 remain, and the answer is a keyhole.")
    assert (r.verdict, r.details["reason"]) == ("unparseable", "answer_in_words")
    assert extract_final_answer("<think>maybe 5?</think>So the final answer is 7.") == "7"


def test_complete_answer_label_traces_pass_format_and_verify(shared_data):
    """QwQ-32B gsm8k answers stated as "**Answer:** …" (no box) were rejected missing_boxed_answer
    although `dataengine verify` graded them correct; they pass now and still grade correct."""
    import json

    lines = (shared_data / "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(x) for x in lines]
    picked = [e for e in rows if e["thinking_model"] == "qwen/QwQ-32B" and e["benchmark"] == "gsm8k"
              and "</think>" in e["response"] and "\\boxed" not in e["response"].rsplit("</think>", 1)[1]
              and "**Answer:**" in e["response"].rsplit("</think>", 1)[1]]
    assert len(picked) >= 15
    verdicts = run_filters([{"completion": e["response"], "think_format": "prompt_opened", "domain": "math"} for e in picked], ["format"])
    assert all(v["format"].reason != "missing_final_answer" for v in verdicts)
    graded = [grade_math(str(e["gold_answer"]), e["response"]).verdict for e in picked]
    assert graded.count("correct") >= 0.8 * len(picked), graded
