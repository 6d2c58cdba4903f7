"""The vLLM engine runs only where vLLM and a GPU exist; elsewhere it fails with a clear message."""

from __future__ import annotations

import pytest

from dataengine.engines import GenerationRequest, SamplingParams, get_engine
from dataengine.engines.vllm_engine import vllm_available

AVAILABLE, WHY = vllm_available()


@pytest.mark.skipif(AVAILABLE, reason="vLLM is installed here; the GPU test below covers it")
def test_missing_vllm_is_a_clear_error():
    with pytest.raises(RuntimeError, match="vllm"):
        get_engine("vllm", model="any")


@pytest.mark.gpu
@pytest.mark.skipif(not AVAILABLE, reason=f"needs vLLM and a CUDA GPU: {WHY}")
def test_vllm_generates_n_samples_with_the_chat_template(tmp_path):
    from dataengine.tinymodel import build_tiny_model

    path = build_tiny_model(tmp_path / "tiny", "qwen2.5")
    eng = get_engine("vllm", model=str(path), gpu_memory_utilization=0.2, max_model_len=1024)
    reqs = [GenerationRequest(f"r{i}", messages=[{"role": "user", "content": f"{i}+{i}?"}],
                              params=SamplingParams(n=4, max_tokens=16, seed=0)) for i in range(8)]
    out = eng.generate(reqs)
    assert all(r.ok and len(r.completions) == 4 for r in out)
    assert all(r.rendered_prompt.endswith("<|im_start|>assistant\n") for r in out)
    assert all(c.finish_reason in ("stop", "length") and c.completion_tokens for r in out for c in r.completions)
    eng.close()
