"""Rewards: format, overlong, accuracy and language consistency through the registry, on real data."""

from __future__ import annotations

import json

import pytest

from trainers.rewards import get_reward, overlong_reward, think_format_reward


def test_format_reward_needs_one_think_block_and_an_answer():
    good = ["<think>\n2 + 3 = 5\n</think>\n\nThe answer is 5.", "<think>x</think>y"]
    bad = ["The answer is 5.", "<think>\n2 + 3\n</think>", "<think> </think>5", "<think>a</think>b<think>c</think>d",
           "<think>never closed"]
    assert think_format_reward([], good + bad) == [1.0] * 2 + [0.0] * 5
    # templates that open the think block in the prompt (R1-Distill): the completion starts inside it
    assert think_format_reward([], ["2 + 3 = 5\n</think>\n\n5", "<think>x</think>5"], think_opened_in_prompt=True) == [1.0, 0.0]


def test_format_reward_on_real_distill_traces(shared_data):
    """R1-distill traces open <think> in the prompt: finished ones pass, ones cut off at ~1000 tokens fail."""
    path = shared_data / "traces" / "thinking_llms_interp" / "r1distill_qwq_benchmark_traces.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()[:60]]
    key = next(k for k in ("response", "completion", "output") if k in rows[0])
    scores = think_format_reward([], [r[key] for r in rows], think_opened_in_prompt=True)
    closed = ["</think>" in r[key] and r[key].split("</think>", 1)[1].strip() for r in rows]
    assert scores == [1.0 if c else 0.0 for c in closed]
    assert 0 < sum(scores) < len(scores)


def test_overlong_ramp_matches_dapo():
    lengths = [0, 80, 81, 90, 100, 101]
    assert overlong_reward([], [""] * 6, completion_lengths=lengths, max_completion_length=100, buffer=20) == \
        [0.0, 0.0, -0.05, -0.5, -1.0, -1.0]
    with pytest.raises(ValueError, match="buffer"):
        overlong_reward([], [""], completion_lengths=[1], max_completion_length=10, buffer=10)


def test_accuracy_needs_a_reference_or_tests():
    with pytest.raises(ValueError, match="needs a 'answer' column"):
        get_reward("accuracy")([], ["<think>x</think>5"])


def test_registry_names_what_it_knows():
    with pytest.raises(ValueError, match="known: .*accuracy.*format.*language_consistency.*overlong"):
        get_reward("acc")


def test_accuracy_on_real_math500_answers(shared_data):
    """Correct boxed answers score 1, another problem's answer 0, and an answer that appears only
    inside the reasoning is not read from there."""
    rows = [json.loads(x) for x in (shared_data / "benchmarks" / "math500_limo.jsonl").read_text().splitlines()[:12]]
    golds = [r["answer"] for r in rows]
    right = [f"<think>\nworking it out\n</think>\n\nThe answer is $\\boxed{{{g}}}$." for g in golds]
    wrong = [f"<think>\nhm\n</think>\n\nThe answer is $\\boxed{{{golds[(i + 1) % 12]}}}$." for i in range(12)]
    hidden = [f"<think>\nit is \\boxed{{{g}}}\n</think>\n\nI am not sure." for g in golds]
    acc = get_reward("accuracy")
    assert acc([], right, answer=golds) == [1.0] * 12
    assert acc([], wrong, answer=golds) == [0.0] * 12
    assert acc([], hidden, answer=golds) == [0.0] * 12


def test_accuracy_on_real_humaneval_code_is_the_pass_rate(shared_data):
    rows = [json.loads(x) for x in (shared_data / "code" / "HumanEval.jsonl").read_text().splitlines()[:3]]
    tests, entry = [r["test"] for r in rows], [r["entry_point"] for r in rows]
    good = [f"<think>\nwrite it\n</think>\n\n```python\n{r['prompt']}{r['canonical_solution']}\n```" for r in rows]
    broken = [f"<think>\nx\n</think>\n\n```python\n{r['prompt']}    return None\n```" for r in rows]
    no_code = ["<think>\nx\n</think>\n\nI would loop over the list."] * 3
    acc = get_reward("accuracy")
    assert acc([], good, tests=tests, entry_point=entry) == [1.0] * 3
    assert acc([], broken, tests=tests, entry_point=entry) == [0.0] * 3
    assert acc([], no_code, tests=tests, entry_point=entry) == [0.0] * 3


def test_language_consistency_on_real_mgsm(shared_data):
    """R1's reward: share of target-language words in the chain of thought (MGSM zh/en questions as
    stand-in reasoning); the answer after </think> does not count."""
    zh = [line.split("\t")[0] for line in (shared_data / "benchmarks/multilingual/mgsm/mgsm_zh.tsv").read_text().splitlines()[:3]]
    en = [line.split("\t")[0] for line in (shared_data / "benchmarks/multilingual/mgsm/mgsm_en.tsv").read_text().splitlines()[:3]]
    lc = get_reward("language_consistency")
    comps = [f"<think>\n{t}\n</think>\n\n{e}" for t, e in zip(zh, en)]
    as_zh = lc([], comps, language=["zh"] * 3)
    as_en = lc([], comps, language=["en"] * 3)
    assert all(z > 0.8 for z in as_zh) and all(e < 0.2 for e in as_en)
    mixed = lc([], [f"<think>\n{e} {z}\n</think>\n\nok" for e, z in zip(en, zh)], language=["en"] * 3)
    assert all(0.1 < m < 0.95 for m in mixed)
    with pytest.raises(ValueError, match="no 'language' column and no default_language"):
        lc([], comps)
    assert lc([], comps, default_language="zh") == as_zh
