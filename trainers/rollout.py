"""GRPO rollouts through the engine interface, sampled from the live policy (always current weights).

The trainer wraps the model it is updating in the `transformers` engine
(`TransformersEngine.from_model`), so no weight sync is needed and the engine returns the sampled
token ids with each completion (`Completion.token_ids`): the trainer scores exactly what was
sampled. An engine that returns only text still works: `completion_ids` then re-tokenizes it.

Prompts are rendered here, not in the engine, so the trainer knows the exact prompt ids the
engine conditioned on (the engine tokenizes the same text the same way).
"""

from __future__ import annotations

from typing import Any

from dataengine.engines.base import Completion


def render_prompt(tokenizer: Any, messages: list[dict[str, str]], max_prompt_length: int) -> tuple[str, list[int]]:
    """The prompt text (chat template + generation prompt) and its token ids, left-truncated to
    max_prompt_length tokens: the end of a prompt (the question, the generation prompt) matters most."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) > max_prompt_length:
        text = tokenizer.decode(ids[-max_prompt_length:], skip_special_tokens=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text, ids


def completion_ids(tokenizer: Any, completion: Completion) -> list[int]:
    """The completion's token ids: as sampled when the engine returned them, else re-tokenized (+ EOS
    when it stopped naturally)."""
    if completion.token_ids is not None:
        return list(completion.token_ids)
    ids = tokenizer(completion.text, add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id] if completion.finish_reason == "stop" else ids
