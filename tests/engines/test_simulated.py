"""The simulated engine: exact answers, labelled planted defects at their rates, determinism."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from dataengine.demo_problems import MAKERS, demo_prompts, load_benchmark, make_problem, solve
from dataengine.engines import GenerationRequest, SamplingParams, get_engine
from dataengine.engines.simulated import DEFECTS, SimulatedEngine
from dataengine.records import split_completion


def _requests(n_prompts: int, n: int, seed: int = 0) -> list[GenerationRequest]:
    return [GenerationRequest(p.prompt_id, messages=[{"role": "user", "content": p.prompt}],
                              params=SamplingParams(n=n), metadata={"prompt_metadata": p.metadata})
            for p in demo_prompts(n_prompts, seed=seed)]


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_every_problem_kind_round_trips_through_solve(kind):
    rng = random.Random(kind)
    for _ in range(200):
        p = make_problem(rng, kind)
        assert solve(f"Example first: Solve for x: 2x + 1 = 5.\n\nNow: {p.text}").answer == p.answer


def test_clean_samples_box_the_exact_answer_inside_a_closed_think_block():
    eng = get_engine("simulated", defect_rates={})
    reqs = _requests(50, 2)
    for req, res in zip(reqs, eng.generate(reqs)):
        truth = solve(req.messages[0]["content"]).answer
        for c in res.completions:
            s = split_completion(c.text, "think")
            assert s.think_closed and f"\\boxed{{{truth}}}" in s.answer
            assert c.finish_reason == "stop" and c.metadata["synthetic"] is True
            assert c.metadata["planted_defects"] == []


def test_defects_are_planted_near_their_rates_and_labelled():
    rates = {d: 0.1 for d in DEFECTS}
    eng = SimulatedEngine(defect_rates=rates)
    reqs = _requests(400, 4)
    seen: Counter[str] = Counter()
    total = 0
    for req, res in zip(reqs, eng.generate(reqs)):
        truth = solve(req.messages[0]["content"]).answer
        for i, c in enumerate(res.completions):
            total += 1
            d = c.metadata["planted_defects"]
            seen.update(d)
            s = split_completion(c.text, "think")
            if "unclosed_think" in d or "repetition_loop" in d:
                assert s.think_closed is False and c.finish_reason == "length"
            elif "wrong_answer" in d:
                assert f"\\boxed{{{truth}}}" not in s.answer and "\\boxed{" in s.answer
            else:
                assert f"\\boxed{{{truth}}}" in s.answer
            cut = {"unclosed_think", "repetition_loop", "near_duplicate"} & set(d)
            if "language_mixing" in d and not cut:
                assert any("\u4e00" <= ch <= "\u9fff" for ch in c.text)
            if "code_block" in d:
                assert "```python" in c.text and c.text.count("```") == 2
            if "near_duplicate" in d:
                assert i > 0
                base = res.completions[0].text
                assert c.text != base and abs(len(c.text) - len(base)) < 10
    for d in DEFECTS:
        # near_duplicate only applies to samples 1..3 (3/4 of them); the rest to every sample.
        expected = 0.1 * total * (0.75 if d == "near_duplicate" else 1)
        assert 0.6 * expected < seen[d] < 1.4 * expected, (d, seen[d], expected)


def test_output_is_deterministic_per_prompt_sample_and_seed():
    reqs = _requests(20, 4)
    a = SimulatedEngine(seed=1).generate(reqs)
    b = SimulatedEngine(seed=1).generate(reqs)
    c = SimulatedEngine(seed=2).generate(reqs)
    texts = lambda rs: [x.text for r in rs for x in r.completions]  # noqa: E731
    assert texts(a) == texts(b) and texts(a) != texts(c)
    # asking for samples 2 and 3 alone (a resumed run) gives what the full run gave for them
    r0 = reqs[0]
    part = GenerationRequest(r0.request_id, messages=r0.messages, params=SamplingParams(n=2),
                             metadata={"sample_indices": [2, 3]})
    got = SimulatedEngine(seed=1).generate([part])[0]
    assert [x.text for x in got.completions] == [x.text for x in a[0].completions[2:]]


def test_contaminated_prompts_from_the_real_math500_file_are_labelled(shared_data):
    bench = load_benchmark(shared_data / "benchmarks" / "math500_limo.jsonl")
    prompts = list(demo_prompts(300, seed=3, contaminated_rate=0.1, benchmark=bench))
    planted = [p for p in prompts if "benchmark_contaminated" in p.metadata["planted_defects"]]
    math500 = {b.text for b in bench}
    assert 10 < len(planted) < 60 and all(p.prompt in math500 for p in planted)
    assert len({p.prompt_id for p in prompts}) == 300
    req = GenerationRequest("x", prompt=planted[0].prompt, params=SamplingParams(n=1),
                            metadata={"prompt_metadata": planted[0].metadata, "reference_answer": planted[0].reference_answer})
    c = SimulatedEngine(defect_rates={}).generate([req])[0].completions[0]
    assert c.metadata["planted_defects"] == ["benchmark_contaminated"]
    assert f"\\boxed{{{planted[0].reference_answer}}}" in c.text


def test_max_tokens_truncates_with_length():
    req = GenerationRequest("x", prompt="Compute 12 \u00d7 34 + 5.", params=SamplingParams(n=1, max_tokens=20))
    c = SimulatedEngine(defect_rates={}).generate([req])[0].completions[0]
    assert c.finish_reason == "length" and len(c.text) <= 80


def test_bad_defect_rates_are_rejected():
    with pytest.raises(ValueError, match="unknown defects"):
        SimulatedEngine(defect_rates={"typo": 0.1})
    with pytest.raises(ValueError, match="not in"):
        SimulatedEngine(defect_rates={"wrong_answer": 2})


R1_STYLE_TRACES = {  # long-CoT traces in ../shared/data/traces (the short-CoT baselines left out)
    "sky_t1": ["aime24__Sky-T1-math-correct-5K-32B-ckpt140.jsonl", "aime24__Sky-T1-math-reflection-1.0-32B.jsonl",
               "amc23__Sky-T1-math-correct-5K-14B.jsonl", "amc23__Sky-T1-math-corrupt-0.5-32B.jsonl",
               "math500__Sky-T1-math-correct-5K-27B.jsonl", "minerva__Sky-T1-math-wrong-5K-27B.jsonl"],
    "thinking_llms_interp": ["r1distill_qwq_benchmark_traces.jsonl"],
}


def test_r1_length_spread_is_fitted_to_the_real_traces_and_the_mean_is_r1s(shared_data):
    import json
    import math

    import numpy as np

    from dataengine.engines.simulated import R1_LENGTH

    real = []
    for folder, names in R1_STYLE_TRACES.items():
        for name in names:
            for line in open(shared_data / "traces" / folder / name, encoding="utf-8"):
                r = json.loads(line)
                real += [len(c) for c in r["code"]] if "code" in r else [len(r["response"])]
    assert len(real) == 3070
    assert abs(np.log(real).std() - R1_LENGTH["sigma"]) < 0.01
    assert abs(math.exp(R1_LENGTH["mu"] + R1_LENGTH["sigma"] ** 2 / 2) - 20_000) < 200

    eng = SimulatedEngine(defect_rates={}, length="r1")
    reqs = [GenerationRequest(p.prompt_id, prompt=p.prompt, params=SamplingParams(n=2, max_tokens=1 << 20))
            for p in demo_prompts(150, seed=4)]
    lengths = [len(c.text) for res in eng.generate(reqs) for c in res.completions]
    assert 16_000 < np.mean(lengths) < 24_000  # R1's ~20 KB, from 300 draws of a heavy-tailed lognormal
    assert abs(np.log(lengths).std() - R1_LENGTH["sigma"]) < 0.15


def test_r1_length_samples_stay_clean_and_correct():
    """The padding must not look like a defect: clean R1-length samples pass readability (no
    repetition, no wall of text) and still box the exact answer after a closed think block."""
    from dataengine.verify.math import grade_math
    from filters import readability
    from filters.base import FilterInput

    eng = SimulatedEngine(defect_rates={}, length="r1")
    reqs = _requests(40, 2, seed=6)
    for req in reqs:
        req.params = SamplingParams(n=2, max_tokens=1 << 20)
    texts, truths = [], []
    for req, res in zip(reqs, eng.generate(reqs)):
        truth = solve(req.messages[0]["content"]).answer
        for c in res.completions:
            s = split_completion(c.text, "think")
            assert s.think_closed and f"\\boxed{{{truth}}}" in s.answer and c.finish_reason == "stop"
            assert grade_math(truth, s.answer).verdict == "correct"
            texts.append(c.text)
            truths.append(truth)
    scores = readability.score([FilterInput(completion=t, domain="math") for t in texts])
    reasons = [readability.decide(sc, readability.ReadabilityThresholds())[1] for sc in scores]
    assert reasons == [None] * len(texts)
    # and the same request gives the same text
    again = eng.generate(reqs[:1])[0].completions[0].text
    assert again == texts[0]


def test_unknown_length_is_rejected():
    with pytest.raises(ValueError, match="length must be one of"):
        SimulatedEngine(length="huge")


def test_generate_config_passes_the_length_to_the_engine():
    from dataengine.config import load_config_dict

    gc = load_config_dict({"generate": {"simulated": {"length": "r1"}}}).section("generate")
    eng = get_engine(gc.engine, **gc.engine_kwargs())
    assert isinstance(eng, SimulatedEngine) and eng.length == "r1"
