"""Fixtures for the trainer tests: tiny local models and a small exported-style messages dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> Path:
    from dataengine.tinymodel import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen2.5", "qwen2.5")


def exported_rows(shared_data: Path, n: int) -> list[dict]:
    """Rows in the export format (issue 7): messages with `<think>\\n…\\n</think>\\n\\n` + answer, plus
    metadata columns; built from real HuatuoGPT-o1 traces, shortened so a tiny model trains fast."""
    raw = json.loads((shared_data / "traces" / "huatuo_o1_medical_cot_demo200.json").read_text())
    rows = []
    for i, r in enumerate(raw[:n]):
        answer = r["Response"][:120]
        rows.append({
            "messages": [
                {"role": "user", "content": r["Question"][:100]},
                {"role": "assistant", "content": f"<think>\n{r['Complex_CoT'][:160]}\n</think>\n\n{answer}"},
            ],
            "prompt_id": f"p{i}", "trace_id": f"t{i}", "source": "huatuo_o1", "bucket": "reasoning",
            "domain": "medical", "num_tokens": 0,
        })
    return rows


@pytest.fixture(scope="session")
def messages_dataset(tmp_path_factory, shared_data) -> Path:
    """A `datasets` folder (save_to_disk) in the exported shape, 16 conversations."""
    import datasets

    path = tmp_path_factory.mktemp("data") / "mix"
    datasets.Dataset.from_list(exported_rows(shared_data, 16)).save_to_disk(str(path))
    return path


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; on a busy 2-core CI box two threads spin against each
    other (a 64-wide matmul goes from ~1 ms to ~30 ms)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
