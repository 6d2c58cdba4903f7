"""Data for the trainers: load a chat dataset, tokenize with an assistant-only label mask, and plan
deterministic (packed or padded) micro-batches so a resumed run sees exactly the same batches.

The label mask comes from rendering the conversation with the model's own chat template: the
characters of each assistant turn (its content, think block included, through the end-of-turn
token) are located by rendering the conversation up to that turn with the generation prompt, and
tokens are mapped to characters with the fast tokenizer's offsets. Everything else is -100.

>>> plan_micro_batches([5, 3, 4, 2], batch_size=2, max_length=8, packing=True, seed=0, epoch=0)
[[[3, 2], [0]], [[1]]]
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

IGNORE = -100


def load_table(path: str, split: str = "train"):  # type: ignore[no-untyped-def]
    """A `datasets.Dataset` from a save_to_disk folder (Dataset or DatasetDict) or a jsonl/json/parquet file."""
    import datasets

    p = Path(path)
    if p.is_dir():
        ds = datasets.load_from_disk(str(p))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise ValueError(f"{path}: no split {split!r}; splits: {', '.join(ds)}")
            ds = ds[split]
        return ds
    if p.suffix in (".jsonl", ".json"):
        return datasets.Dataset.from_json(str(p))
    if p.suffix == ".parquet":
        return datasets.Dataset.from_parquet(str(p))
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such dataset folder or file")
    raise ValueError(f"{path}: expected a datasets folder or a .jsonl/.json/.parquet file")


def check_messages(messages: Any, where: str) -> list[dict[str, str]]:
    """Validate one conversation; the error names the row and what is wrong."""
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: messages must be a non-empty list of {{role, content}}, got {type(messages).__name__}")
    for j, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"{where}: messages[{j}] must have string role and content, got {m!r:.80}")
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError(f"{where}: no assistant turn, nothing to learn from")
    return messages


def tokenize_chat(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> dict[str, list[int]]:
    """input_ids and labels (assistant tokens only, else -100), truncated to max_length.

    >>> ex = tokenize_chat(tok, [{"role": "user", "content": "hi"},   # doctest: +SKIP
    ...                          {"role": "assistant", "content": "<think>\\nhm\\n</think>\\n\\nhello"}], 64)
    """
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True) if i else ""
        upto = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not text.startswith(prefix) or not text.startswith(upto):
            raise ValueError("chat template is not prefix-stable; cannot locate assistant turns for the label mask")
        end = len(upto)
        # Stop after the end-of-turn token: the model must learn to stop, not to emit the template's newline.
        eos = tokenizer.eos_token
        if eos:
            k = text.find(eos, len(prefix), end)
            if k >= 0:
                end = k + len(eos)
        spans.append((len(prefix), end))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"][:max_length], enc["offset_mapping"][:max_length]
    labels = [tok if any(a <= s < b for a, b in spans) else IGNORE for tok, (s, _) in zip(ids, offsets)]
    return {"input_ids": ids, "labels": labels}


def plan_micro_batches(
    lengths: list[int], batch_size: int, max_length: int, packing: bool, seed: int, epoch: int
) -> list[list[list[int]]]:
    """Micro-batches of rows of example indices for one epoch, shuffled by (seed, epoch).

    Padded: each row is one example. Packed: examples fill rows of up to max_length tokens in
    shuffled order (a row closes when the next example does not fit). Pure and deterministic, so a
    resumed run rebuilds the plan and skips the micro-batches it already consumed.
    """
    order = list(range(len(lengths)))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    rows: list[list[int]] = []
    if not packing:
        rows = [[i] for i in order]
    else:
        cur: list[int] = []
        used = 0
        for i in order:
            n = min(lengths[i], max_length)
            if cur and used + n > max_length:
                rows.append(cur)
                cur, used = [], 0
            cur.append(i)
            used += n
        if cur:
            rows.append(cur)
    return [rows[k : k + batch_size] for k in range(0, len(rows), batch_size)]


def collate(examples: list[dict[str, list[int]]], rows: list[list[int]], pad_id: int, packing: bool):  # type: ignore[no-untyped-def]
    """Tensors for one micro-batch. Packed rows get position ids that restart at 0 for each example
    and no attention mask (transformers then builds a block-diagonal causal mask); padded rows get an
    attention mask. Labels are already shifted-ready (the model shifts them)."""
    import torch

    seqs = []
    for row in rows:
        ids: list[int] = []
        labels: list[int] = []
        pos: list[int] = []
        for i in row:
            ex = examples[i]
            ids += ex["input_ids"]
            # The first token of each packed example predicts nothing from the previous example.
            labels += [IGNORE] + ex["labels"][1:]
            pos += list(range(len(ex["input_ids"])))
        seqs.append((ids, labels, pos))
    width = max(len(s[0]) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    labels_t = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    position_ids = torch.zeros((len(seqs), width), dtype=torch.long)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, (ids, labels, pos) in enumerate(seqs):
        input_ids[r, : len(ids)] = torch.tensor(ids)
        labels_t[r, : len(ids)] = torch.tensor(labels)
        # Padding continues the positions so it reads as part of the last packed sequence (masked by labels).
        position_ids[r] = torch.tensor(pos + list(range(pos[-1] + 1, pos[-1] + 1 + width - len(ids))))
        attention_mask[r, : len(ids)] = 1
    batch = {"input_ids": input_ids, "labels": labels_t, "position_ids": position_ids}
    if not packing:
        batch["attention_mask"] = attention_mask
    return batch
