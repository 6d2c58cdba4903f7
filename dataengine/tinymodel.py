"""A tiny causal LM and BPE tokenizer built locally in seconds, for tests and dry runs.

Nothing is downloaded: the tokenizer is trained with `tokenizers` on a small corpus, the model is a
randomly initialised Qwen2 or Llama config with a few thousand parameters per layer, and the chat
template is the real family template (see `chat_templates`).

>>> path = build_tiny_model("/tmp/tiny-qwen")            # doctest: +SKIP
>>> AutoModelForCausalLM.from_pretrained(path)           # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from dataengine.chat_templates import SPECIAL_TOKENS, TEMPLATES

DEFAULT_CORPUS = [
    "Let me think step by step. First, add the numbers: 2 + 3 = 5. Wait, let me check again: 5 is correct.",
    "The answer is \\boxed{42}. So the final answer is 42.",
    "def add(a, b):\n    return a + b\n",
    "Hello! How can I help you today? Bonjour, hola, hallo.",
    "计算二加三等于五。所以答案是五。",
    "To solve the equation x^2 - 5x + 6 = 0, factor it as (x - 2)(x - 3) = 0, so x = 2 or x = 3.",
    "Verify: 12 * 13 = 156 because 12 * 10 = 120 and 12 * 3 = 36.",
] * 20


# A tiny model vLLM's CPU backend accepts (head size 32): build_tiny_model(path, **VLLM_TINY).
VLLM_TINY = {"hidden_size": 64, "num_heads": 2}


def build_tokenizer(family: str = "qwen2.5", vocab_size: int = 384, corpus: list[str] | None = None):  # type: ignore[no-untyped-def]
    """A byte-level BPE `PreTrainedTokenizerFast` with the family's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = SPECIAL_TOKENS[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=spec["extra"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus or DEFAULT_CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=spec["bos"],
        eos_token=spec["eos"],
        pad_token=spec["pad"],
    )
    fast.chat_template = TEMPLATES[family]
    return fast


def build_tiny_model(
    out_dir: str | Path,
    family: str = "qwen2.5",
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    head_dim: int | None = None,
    vocab_size: int = 384,
    seed: int = 0,
    corpus: list[str] | None = None,
) -> Path:
    """Write a tiny model + tokenizer to `out_dir` (loadable with `from_pretrained`); returns it.

    The head size is hidden_size / num_heads (16 by default) unless `head_dim` is given. vLLM's CPU
    attention backend takes only head sizes 32, 64, 80 or more: use `head_dim=32` (or `num_heads=2`)
    for a model vLLM serves; `VLLM_TINY` holds those settings."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(family, vocab_size, corpus)
    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=4096,
        head_dim=head_dim or hidden_size // num_heads,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        tie_word_embeddings=True,
    )
    if family == "qwen2.5":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    else:
        model = LlamaForCausalLM(LlamaConfig(**common))
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
