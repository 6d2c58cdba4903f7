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
