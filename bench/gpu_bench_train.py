"""Trainer throughput on one GPU (bf16): SFT tokens/s (packed and padded) and GRPO step tokens/s,
ours against TRL on the same config. Ready for a GPU node; refuses to run without CUDA.

Model: `--model` (a local folder or hub id the node has), else a ~100M-parameter Qwen2 built locally
(random weights; throughput does not depend on them). Data as in bench_train.py: real reasoning
traces from ../shared/data in the exported `messages` shape, GSM8K prompts for GRPO.

    python bench/gpu_bench_train.py                         # built model, sdpa
    python bench/gpu_bench_train.py --model Qwen/Qwen2.5-0.5B --attn flash_attention_2

GRPO is also run with `rollout_engine: vllm` (colocated vLLM, weights pushed every step, TIS) in the
interpreter `--vllm-python` (default: .venv-vllm's when `make setup-vllm` built it, else this one),
against the transformers-rollout run above: same config, same GPU.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _harness import ROOT, print_table, run_isolated
from bench_train import make_data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--examples", type=int, default=192)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--grpo-steps", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--completion-length", type=int, default=256)
    venv_py = ROOT / ".venv-vllm" / "bin" / "python"
    ap.add_argument("--vllm-python", default=str(venv_py) if venv_py.exists() else sys.executable)
    ap.add_argument("--vllm-memory", type=float, default=0.3, help="vllm_gpu_memory_utilization")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_bench_train.py needs a CUDA GPU (run bench/bench_train.py on CPU)")
    tmp = Path(tempfile.mkdtemp(prefix="gpu-bench-train-"))
    try:
        model = args.model
        if model is None:
            from dataengine.tinymodel import build_tiny_model

            model = str(build_tiny_model(tmp / "model", hidden_size=768, num_layers=12, num_heads=12))
        ours_ds, trl_ds, prompts = make_data(tmp, args.examples)
        steps = args.examples // args.batch
        n_comp = args.prompts * args.G
        rows = []

        for packing in (False, True):
            ours = run_isolated(f"""
                from trainers.config import SFTConfig
                from trainers.sft import train_sft
                from trainers.runtime import read_metrics
                cfg = SFTConfig(model={model!r}, dataset={str(ours_ds)!r}, output_dir={str(tmp / f'o-sft-{packing}')!r},
                                max_length={args.max_length}, batch_size={args.batch if not packing else 1},
                                packing={packing}, max_steps={steps}, lr=1e-5, resume_from=None, bf16=True,
                                attn_implementation={args.attn!r})
                train_sft(cfg)
                ms = [r for r in read_metrics(cfg.output_dir) if "loss" in r][1:]  # first step: CUDA warmup
                RESULT["tok_s"] = sum(r["tokens_per_s"] * r["step_s"] for r in ms) / sum(r["step_s"] for r in ms)
            """)
            rows.append((f"SFT tokens/s, ours, {'packed' if packing else 'padded'}", f"{ours.result['tok_s']:,.0f}", ""))
            if not packing:
                ours_padded = ours.result["tok_s"]

        trl = run_isolated(f"""
            import datasets, torch
            from trl import SFTConfig, SFTTrainer
            from transformers import TrainerCallback
            ds = datasets.load_from_disk({str(trl_ds)!r})
            args = SFTConfig(output_dir={str(tmp / 't-sft')!r}, per_device_train_batch_size={args.batch},
                             max_length={args.max_length}, packing=False, max_steps={steps}, learning_rate=1e-5,
                             report_to=[], save_strategy="no", logging_steps=1, completion_only_loss=True, bf16=True,
                             include_num_input_tokens_seen="non_padding",
                             model_init_kwargs={{"attn_implementation": {args.attn!r}}})
            tr = SFTTrainer(model={model!r}, args=args, train_dataset=ds)
            out = tr.train()
            RESULT["tokens"] = tr.state.num_input_tokens_seen or 0
            RESULT["train_runtime"] = out.metrics["train_runtime"]
        """)
        grpo_ours = run_isolated(f"""
            from trainers.config import GRPOConfig
            from trainers.grpo import train_grpo
            from trainers.runtime import read_metrics
            cfg = GRPOConfig(model={model!r}, dataset={str(prompts)!r}, output_dir={str(tmp / 'o-grpo')!r},
                             rewards={{"format": 1.0}}, prompts_per_step={args.prompts}, num_generations={args.G},
                             micro_batch_size={n_comp}, max_completion_length={args.completion_length},
                             max_steps={args.grpo_steps}, lr=1e-6, resume_from=None, bf16=True,
                             attn_implementation={args.attn!r})
            train_grpo(cfg)
            ms = read_metrics(cfg.output_dir)[1:]
            RESULT["tok_s"] = sum(r["completion_length"] * {n_comp} for r in ms) / sum(r["step_s"] for r in ms)
            RESULT["step_s"] = sum(r["step_s"] for r in ms) / len(ms)
        """)
        grpo_vllm = run_isolated(f"""
            from trainers.config import GRPOConfig
            from trainers.grpo import train_grpo
            from trainers.runtime import read_metrics
            cfg = GRPOConfig(model={model!r}, dataset={str(prompts)!r}, output_dir={str(tmp / 'v-grpo')!r},
                             rewards={{"format": 1.0}}, prompts_per_step={args.prompts}, num_generations={args.G},
                             micro_batch_size={n_comp}, max_completion_length={args.completion_length},
                             max_steps={args.grpo_steps}, lr=1e-6, resume_from=None, bf16=True,
                             attn_implementation={args.attn!r}, rollout_engine="vllm",
                             vllm_gpu_memory_utilization={args.vllm_memory})
            train_grpo(cfg)
            ms = read_metrics(cfg.output_dir)[1:]
            RESULT["tok_s"] = sum(r["completion_length"] * {n_comp} for r in ms) / sum(r["step_s"] for r in ms)
            RESULT["step_s"] = sum(r["step_s"] for r in ms) / len(ms)
            RESULT["sync_ms"] = 1000 * sum(r["weight_sync_s"] for r in ms) / len(ms)
            RESULT["logp_diff"] = max(r["sampler_logp_diff"] for r in ms)
        """, python=args.vllm_python)
        grpo_trl = run_isolated(f"""
            import datasets
            from trl import GRPOConfig, GRPOTrainer
            from trl.rewards import think_format_reward
            ds = datasets.Dataset.from_json({str(prompts)!r}).map(
                lambda r: {{"prompt": [{{"role": "user", "content": r["prompt"]}}]}})
            args = GRPOConfig(output_dir={str(tmp / 't-grpo')!r}, per_device_train_batch_size={n_comp},
                              num_generations={args.G}, max_completion_length={args.completion_length},
                              max_steps={args.grpo_steps}, learning_rate=1e-6, beta=0.0, report_to=[], bf16=True,
                              save_strategy="no", logging_steps=1, top_k=0,
                              model_init_kwargs={{"attn_implementation": {args.attn!r}}})
            tr = GRPOTrainer(model={model!r}, reward_funcs=[think_format_reward], args=args, train_dataset=ds)
            out = tr.train()
            toks = sum(h["completions/mean_length"] * {n_comp} for h in tr.state.log_history if "completions/mean_length" in h)
            RESULT["tok_s"] = toks / out.metrics["train_runtime"]
        """)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    trl_tok_s = trl.result["tokens"] / trl.result["train_runtime"] if trl.result["tokens"] else float("nan")
    rows[0] = (rows[0][0], rows[0][1], f"TRL SFTTrainer {trl_tok_s:,.0f} tok/s → ×{ours_padded / trl_tok_s:.2f}")
    rows.append(("GRPO completion tokens/s", f"{grpo_ours.result['tok_s']:,.0f}",
                 f"TRL GRPOTrainer {grpo_trl.result['tok_s']:,.0f} → ×{grpo_ours.result['tok_s'] / grpo_trl.result['tok_s']:.2f}"))
    v, t = grpo_vllm.result, grpo_ours.result
    rows.append(("GRPO step s, vLLM rollouts (steps 2..)", f"{v['step_s']:.2f}",
                 f"transformers rollouts {t['step_s']:.2f} → ×{t['step_s'] / v['step_s']:.2f}"))
    rows.append(("GRPO vLLM: weight sync ms/step, mean |Δlogp| sampler vs trainer", f"{v['sync_ms']:.0f}",
                 f"{v['logp_diff']:.1e}"))
    print_table(f"Trainers on {torch.cuda.get_device_name()} (bf16, {args.attn})", rows)


if __name__ == "__main__":
    main()
