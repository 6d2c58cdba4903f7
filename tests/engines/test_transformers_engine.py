"""The transformers engine on a tiny Qwen2 model built locally: batched, n samples, chat template."""

from __future__ import annotations

import pytest

from dataengine.engines import GenerationRequest, SamplingParams, get_engine
from dataengine.tinymodel import build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen", "qwen2.5")


def test_generates_n4_for_8_prompts_in_batches(tiny):
    eng = get_engine("transformers", model=str(tiny), device="cpu", batch_size=3)
    params = SamplingParams(n=4, max_tokens=12, seed=0)
    reqs = [GenerationRequest(f"r{i}", messages=[{"role": "user", "content": f"What is {i} + {i}?"}], params=params)
            for i in range(8)]
    out = eng.generate(reqs)
    assert [r.request_id for r in out] == [f"r{i}" for i in range(8)]
    for i, r in enumerate(out):
        assert r.ok and len(r.completions) == 4
        # the tokenizer's (real Qwen2.5) chat template rendered the prompt
        assert r.rendered_prompt.startswith("<|im_start|>system") and f"What is {i} + {i}?" in r.rendered_prompt
        assert r.rendered_prompt.endswith("<|im_start|>assistant\n")
        assert r.prompt_tokens > 5
        for c in r.completions:
            assert c.finish_reason in ("stop", "length")
            assert 1 <= c.completion_tokens <= 12
            assert "<|endoftext|>" not in c.text  # padding never leaks into a completion
    eng.close()


def test_plain_prompt_and_greedy_are_reproducible(tiny):
    eng = get_engine("transformers", model=str(tiny), device="cpu")
    req = GenerationRequest("p", prompt="Let me think step by step.", params=SamplingParams(n=2, temperature=0.0, max_tokens=8))
    a, b = eng.generate([req])[0], eng.generate([req])[0]
    assert [c.text for c in a.completions] == [c.text for c in b.completions]
    assert a.completions[0].text == a.completions[1].text  # greedy: both samples agree
    assert a.rendered_prompt == "Let me think step by step."
