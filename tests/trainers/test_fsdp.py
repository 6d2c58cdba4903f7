"""The torchrun + FSDP2 path on CPU (gloo): two ranks train exactly like one process with the same
global batch, and resume from a checkpoint written under FSDP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import yaml

from trainers.config import SFTConfig
from trainers.runtime import read_metrics
from trainers.sft import train_sft


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(config, tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
                        "-m", "trainers.sft", "--config", str(config)],
                       capture_output=True, text=True, env=env, timeout=300, cwd=os.getcwd())
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.slow
def test_two_fsdp2_ranks_match_one_process_and_resume(tiny_qwen, messages_dataset, tmp_path):
    common = dict(model=str(tiny_qwen), dataset=str(messages_dataset), max_length=192, batch_size=2, max_steps=3)
    config = tmp_path / "sft.yaml"
    config.write_text(yaml.safe_dump({"train_sft": {**common, "grad_accum": 1, "output_dir": str(tmp_path / "fsdp"),
                                              "save_every": 2}}))
    torchrun(config, tmp_path)
    # one process, two micro-batches per step: the same global batch as two ranks with one each
    train_sft(SFTConfig(**common, grad_accum=2, output_dir=str(tmp_path / "single"), resume_from=None))
    fsdp, single = read_metrics(tmp_path / "fsdp"), read_metrics(tmp_path / "single")
    assert [r["step"] for r in fsdp if "loss" in r] == [1, 2, 3]
    for a, b in zip(fsdp, single):
        assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["grad_norm"] - b["grad_norm"]) < 1e-4
    # resume under FSDP from checkpoint-2: step 3 again, with the same loss
    (tmp_path / "fsdp" / "final").rename(tmp_path / "first-final")
    torchrun(config, tmp_path)
    again = read_metrics(tmp_path / "fsdp")
    assert [r["step"] for r in again] == [1, 2, 3]
    assert abs(again[2]["loss"] - single[2]["loss"]) < 1e-5
