"""A pool built once per session from real data: the six SFT sets and R1-distill/QwQ traces."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SFT_FILES = [
    "alpaca_en_demo_llamafactory.json",
    "alpaca_zh_demo_llamafactory.json",
    "identity_llamafactory.json",
    "medical_sft_1K_medicalgpt.jsonl",
    "sharegpt_zh_1K_medicalgpt.jsonl",
    "stanford_alpaca_seed_tasks.jsonl",
]
REASONING = "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"


@pytest.fixture(scope="session")
def pool_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dataengine.ingest import IngestOptions, ingest
    from dataengine.mix.sft_ingest import ingest_sft
    from dataengine.store import Workspace

    root = tmp_path_factory.mktemp("pool") / "ws"
    ws = Workspace.init(root)
    for name in SFT_FILES:
        ingest_sft(ws, shared_data / "sft" / name)
    # Domain = benchmark (gsm8k / math500 / aime), so quotas per domain can be checked on real rows.
    ingest(ws, shared_data / REASONING, IngestOptions(
        mapping={"prompt": "question", "completion": "response", "reference_answer": "gold_answer",
                 "model": "thinking_model", "domain": "benchmark"}, think_format="prompt_opened"))
    return root


@pytest.fixture()
def pool(pool_dir: Path, tmp_path: Path):
    """A private copy of the pool (tests add filter/verify/dedup rows and mix runs to it)."""
    from dataengine.store import Workspace

    dst = tmp_path / "ws"
    shutil.copytree(pool_dir, dst)
    return Workspace.open(dst)
