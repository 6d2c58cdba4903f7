"""Every bad input gets a verdict and a reason from the stack, never an exception."""

from __future__ import annotations

import pytest
from filter_cases import case

from filters import FilterInput, run_filters
from filters.readability import ngram_stats_batch

REAL = "qwq:gsm8k/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B/79"


def _bad_inputs(shared_data) -> dict[str, dict]:
    real = case(shared_data, REAL)
    big = (real["completion"] * (10_000_000 // len(real["completion"]) + 1))[:10_000_000]
    return {
        "empty": {"completion": ""},
        "none": {"completion": None, "reasoning": None, "answer": None, "prompt": None, "domain": None},
        "ten_mb": {"completion": big, "domain": "math", "prompt": real["prompt"]},
        "nul_bytes": dict(real, completion=real["completion"].replace(" ", "\x00", 50),
                          reasoning=real["reasoning"].replace(" ", "\x00", 50)),
        "lone_surrogates": dict(real, think_format="think", completion="<think>\ud800 x \udfff</think>\ud83d answer",
                                reasoning="\ud800 x \udfff", answer="\ud83d answer", prompt="\udc00?"),
        "only_latex": {"completion": "<think>$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$</think>\\[\\boxed{\\tfrac13}\\]", "domain": "math"},
        "not_strings": {"completion": 12345, "reasoning": ["a"], "answer": {"b": 1}, "domain": 7, "language": 3.5},
    }


# What each filter says about each bad input: (passed, reason).
EXPECTED = {
    "empty": {"format": (False, "empty_completion"), "readability": (False, "missing_summary"), "language_mixing": (True, None)},
    "none": {"format": (False, "empty_completion"), "readability": (False, "missing_summary"), "language_mixing": (True, None)},
    # the real completion repeated: its </think> repeats too, and so does every line
    "ten_mb": {"format": (False, "think_tags_repeated"), "readability": (False, "repetition_loop"), "language_mixing": (True, None)},
    "nul_bytes": {"format": (True, None), "readability": (True, None), "language_mixing": (True, None)},
    "lone_surrogates": {"format": (False, "missing_final_answer"), "readability": (True, None), "language_mixing": (True, None)},
    "only_latex": {"format": (True, None), "readability": (False, "missing_summary"), "language_mixing": (True, None)},
    "not_strings": {"format": (False, "field_not_text"), "readability": (True, None), "language_mixing": (True, None)},
}


@pytest.fixture(scope="module")
def verdicts(shared_data):
    bad = _bad_inputs(shared_data)
    res = run_filters(list(bad.values()))
    return dict(zip(bad, res))


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_bad_input_gets_a_verdict_and_reason(verdicts, kind):
    got = {name: (r.passed, r.reason) for name, r in verdicts[kind].items()}
    assert got == EXPECTED[kind], {n: r.scores.get("error") for n, r in verdicts[kind].items()}


def test_the_stack_rejects_every_unusable_input_with_a_reason(verdicts):
    for kind in ("empty", "none", "ten_mb", "only_latex", "not_strings"):
        reasons = [r.reason for r in verdicts[kind].values() if not r.passed]
        assert reasons, kind


def test_repairs_are_recorded(verdicts):
    assert "nul_bytes" in verdicts["nul_bytes"]["format"].scores["sanitized"]
    assert "lone_surrogates" in verdicts["lone_surrogates"]["language_mixing"].scores["sanitized"]
    assert verdicts["ten_mb"]["language_mixing"].scores["scan_truncated"]
    # LaTeX commands are no words; a differential like "dx" may count as one on the fast path
    assert verdicts["only_latex"]["language_mixing"].scores["reasoning_words"] <= 1


def test_a_filter_that_raises_is_an_explicit_failure_not_a_pass():
    from filters.base import FilterSpec, Thresholds, safe_decide, score_batch

    def boom(inputs):
        if any(i.completion == "bad" for i in inputs):
            raise RuntimeError("kaboom")
        return [{"ok": True} for _ in inputs]

    spec = FilterSpec("boom", boom, lambda s, t: (True, None), Thresholds)
    scores = score_batch(spec, [FilterInput(completion="good"), FilterInput(completion="bad")])
    assert scores[0] == {"ok": True}
    assert "kaboom" in scores[1]["error"]
    assert safe_decide(spec, scores[1], Thresholds()) == (False, "filter_error")


def test_batched_ngram_stats_match_the_per_document_definition():
    import random
    from collections import Counter

    def reference(words):
        total = sum(map(len, words)) or 1
        out = {}
        for n in (2, 3, 4):
            grams = Counter(zip(*(words[i:] for i in range(n)))) if len(words) >= n else Counter()
            g, k = max(grams.items(), key=lambda kv: (kv[1], sum(map(len, kv[0]))), default=((), 0))
            out[f"top_{n}gram_frac"] = round(sum(map(len, g)) * k / total, 4) if k > 1 else 0.0
        seen, dup = set(), [False] * len(words)
        for i in range(len(words) - 4):
            g = tuple(words[i:i + 5])
            if g in seen:
                dup[i:i + 5] = [True] * 5
            seen.add(g)
        out["dup_5gram_frac"] = round(sum(len(w) for w, d in zip(words, dup) if d) / total, 4)
        return out

    rng = random.Random(0)
    docs = [[rng.choice(["a", "bb", "ccc", "dd", "e", "ffff"]) for _ in range(rng.randint(0, 60))] for _ in range(300)]
    assert ngram_stats_batch(docs) == [reference(d) for d in docs]
