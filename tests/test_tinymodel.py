import pytest

from dataengine.tinymodel import build_tiny_model


@pytest.mark.parametrize("family", ["qwen2.5", "llama3"])
def test_tiny_model_loads_generates_and_renders_its_template(tmp_path, family):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = build_tiny_model(tmp_path / family, family)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "2+3?"}, {"role": "assistant", "content": "<think>\n2+3=5\n</think>\n\n5"}],
        tokenize=False,
    )
    assert "<think>\n2+3=5\n</think>\n\n5" in text
    ids = tok(text, return_tensors="pt").input_ids
    # special tokens are single ids, so the think block survives tokenisation
    assert tok.convert_tokens_to_ids("<think>") in ids[0].tolist()
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 5 or out[0, -1].item() == tok.eos_token_id
    assert sum(p.numel() for p in model.parameters()) < 500_000
