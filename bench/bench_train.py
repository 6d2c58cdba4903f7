"""Trainer throughput on CPU: SFT tokens/s and GRPO step tokens/s, ours against TRL on the same config.

Model: a small Qwen2 built locally (no download), `--hidden`/`--layers` wide/deep. SFT data: real
HuatuoGPT-o1 reasoning traces from ../shared/data in the exported `messages` shape (TRL gets the same
conversations as prompt/completion pairs, so both put loss on the assistant turn only), padded
batches. GRPO: GSM8K questions, G completions per prompt, `format` reward, beta 0, one iteration.
Both sides run in fresh processes on one torch thread, end to end (model load included).

GRPO rollouts (issue 14): the same GRPO run with `rollout_engine: vllm` (colocated vLLM, weights
pushed every step, TIS) against `rollout_engine: transformers`, both in the vLLM venv
(`make setup-vllm`; `--vllm-python`), same model, prompts and seed; skipped with a note without it.

    python bench/bench_train.py --examples 64 --grpo-steps 4
    python bench/bench_train.py --only-rollouts --grpo-steps 4 --completion-length 256
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from _harness import ROOT, SHARED_DATA, print_table, run_isolated


def rollout_rows(args, model: Path, prompts: Path, tmp: Path) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """GRPO step time with vLLM rollouts against transformers rollouts, same config, same interpreter."""
    py = Path(args.vllm_python)
    if not py.exists():
        return [("GRPO rollouts vllm vs transformers", "skipped", f"no {py}: run `make setup-vllm`")]
    n_comp = args.prompts * args.G
    runs = {}
    for engine in ("transformers", "vllm"):
        runs[engine] = run_isolated(f"""
            import os; os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"; os.environ["HF_HUB_OFFLINE"] = "1"
            import torch; torch.set_num_threads(1)
            from trainers.config import GRPOConfig
            from trainers.grpo import train_grpo
            from trainers.runtime import read_metrics
            import trainers.grpo as grpo_mod
            CPU_AT_LOG = []  # CPU seconds (all threads) when each step is logged: per-step CPU cost
            _log = grpo_mod.MetricsLogger.log
            def _timed_log(self, step, metrics):
                CPU_AT_LOG.append(_cpu())
                return _log(self, step, metrics)
            grpo_mod.MetricsLogger.log = _timed_log
            cfg = GRPOConfig(model={str(model)!r}, dataset={str(prompts)!r}, output_dir={str(tmp / ('r-' + engine))!r},
                             rewards={{"format": 1.0}}, prompts_per_step={args.prompts}, num_generations={args.G},
                             micro_batch_size={n_comp}, max_prompt_length=256,
                             max_completion_length={args.completion_length}, max_steps={args.grpo_steps},
                             lr=1e-5, resume_from=None, rollout_engine={engine!r}, vllm_kv_cache_gib=0.5)
            T0, C0 = time.perf_counter(), _cpu()
            train_grpo(cfg)
            RESULT["seconds"], RESULT["cpu_seconds"] = time.perf_counter() - T0, _cpu() - C0
            rows = read_metrics(cfg.output_dir)
            RESULT["steps"] = rows
            RESULT["step_cpu"] = (CPU_AT_LOG[-1] - CPU_AT_LOG[0]) / max(1, len(CPU_AT_LOG) - 1)
        """, python=str(py))
    out = []
    t, v = runs["transformers"], runs["vllm"]
    # step 1 carries the engine's first-call warm-up on both sides; the steady state is steps 2..
    def steady(m) -> float:  # type: ignore[no-untyped-def]
        rows = m.result["steps"][1:] or m.result["steps"]
        return sum(r["step_s"] for r in rows) / len(rows)

    def tok(m) -> float:  # type: ignore[no-untyped-def]
        return sum(r["completion_length"] for r in m.result["steps"]) / len(m.result["steps"])

    vrows = v.result["steps"]
    out.append((f"GRPO step s, vLLM rollouts ({args.prompts}×{args.G}, ≤{args.completion_length} tok, steps 2..)",
                f"{steady(v):.2f}", f"transformers rollouts {steady(t):.2f} → ×{steady(t) / steady(v):.2f}"))
    out.append(("GRPO CPU seconds per step (all threads, steps 2..)", f"{v.result['step_cpu']:.2f}",
                f"transformers rollouts {t.result['step_cpu']:.2f} → ×{t.result['step_cpu'] / v.result['step_cpu']:.2f}"))
    out.append(("GRPO mean completion tokens (vllm / transformers)", f"{tok(v):.0f}", f"{tok(t):.0f}"))
    out.append(("GRPO CPU seconds end to end, vLLM (engine start included)", f"{v.cpu_seconds:.1f}",
                f"transformers {t.cpu_seconds:.1f}"))
    out.append(("weight sync per step, ms (vLLM reload_weights)",
                f"{1000 * sum(r['weight_sync_s'] for r in vrows) / len(vrows):.1f}",
                f"max {1000 * max(r['weight_sync_s'] for r in vrows):.1f}"))
    out.append(("mean |logp vLLM − logp trainer| per token (TIS ratio mean)",
                f"{max(r['sampler_logp_diff'] for r in vrows):.1e} max over steps",
                f"IS ratio {sum(r['is_ratio'] for r in vrows) / len(vrows):.4f}"))
    out.append(("GRPO peak RSS MB (vllm / transformers)", f"{v.peak_rss_mb:.0f}", f"{t.peak_rss_mb:.0f}"))
    return out


def make_data(tmp: Path, n: int) -> tuple[Path, Path, Path]:
    """The SFT set twice (messages for us, prompt/completion for TRL) and a GSM8K prompt file."""
    import datasets

    raw = json.loads((SHARED_DATA / "traces" / "huatuo_o1_medical_cot_demo200.json").read_text())
    msgs, pc = [], []
    for r in raw[:n]:
        user = {"role": "user", "content": r["Question"][:300]}
        assistant = {"role": "assistant", "content": f"<think>\n{r['Complex_CoT'][:900]}\n</think>\n\n{r['Response'][:300]}"}
        msgs.append({"messages": [user, assistant]})
        pc.append({"prompt": [user], "completion": [assistant]})
    datasets.Dataset.from_list(msgs).save_to_disk(str(tmp / "ours"))
    datasets.Dataset.from_list(pc).save_to_disk(str(tmp / "trl"))
    rows = [json.loads(x) for x in (SHARED_DATA / "benchmarks" / "gsm8k_test.jsonl").read_text().splitlines()[:64]]
    prompts = tmp / "gsm8k.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": r["question"][:200]}) + "\n" for r in rows))
    return tmp / "ours", tmp / "trl", prompts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--grpo-steps", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=4, help="prompts per GRPO step")
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--completion-length", type=int, default=64)
    ap.add_argument("--vllm-python", default=str(ROOT / ".venv-vllm" / "bin" / "python"),
                    help="interpreter of the vLLM venv, for the rollout comparison")
    ap.add_argument("--only-rollouts", action="store_true", help="only GRPO vllm vs transformers rollouts")
    args = ap.parse_args()
    sft_steps = args.examples // args.batch
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        from dataengine.tinymodel import build_tiny_model

        model = build_tiny_model(tmp / "model", hidden_size=args.hidden, num_layers=args.layers,
                                 num_heads=max(4, args.hidden // 64))
        ours_ds, trl_ds, prompts = make_data(tmp, args.examples)
        rollouts = rollout_rows(args, model, prompts, tmp)
        if args.only_rollouts:
            print_table(f"GRPO rollouts on CPU, 1 thread (hidden {args.hidden}, {args.layers} layers)", rollouts)
            return
        head = "\n            import torch; torch.set_num_threads(1)"

        ours_sft = run_isolated(head + f"""
            from trainers.config import SFTConfig
            from trainers.sft import train_sft
            from trainers.runtime import read_metrics
            cfg = SFTConfig(model={str(model)!r}, dataset={str(ours_ds)!r}, output_dir={str(tmp / 'o-sft')!r},
                            max_length={args.max_length}, batch_size={args.batch}, grad_accum=1, packing=False,
                            max_steps={sft_steps}, lr=1e-4, warmup_steps=1, resume_from=None)
            T0, C0 = time.perf_counter(), _cpu()
            train_sft(cfg)
            RESULT["seconds"], RESULT["cpu_seconds"] = time.perf_counter() - T0, _cpu() - C0
            rows = [r for r in read_metrics(cfg.output_dir) if "loss" in r]
            RESULT["loss"], RESULT["loop_seconds"] = rows[-1]["loss"], sum(r["step_s"] for r in rows)
        """)
        trl_sft = run_isolated(head + f"""
            import datasets
            from trl import SFTConfig, SFTTrainer
            ds = datasets.load_from_disk({str(trl_ds)!r})
            T0, C0 = time.perf_counter(), _cpu()
            args = SFTConfig(output_dir={str(tmp / 't-sft')!r}, per_device_train_batch_size={args.batch},
                             max_length={args.max_length}, packing=False, max_steps={sft_steps}, learning_rate=1e-4,
                             warmup_steps=1, lr_scheduler_type="cosine", report_to=[], use_cpu=True, save_strategy="no",
                             logging_steps=1, completion_only_loss=True, dataloader_num_workers=0, seed=0,
                             gradient_checkpointing=False)  # TRL 1.16 defaults it on; ours is off
            tr = SFTTrainer(model={str(model)!r}, args=args, train_dataset=ds)
            out = tr.train()
            RESULT["seconds"], RESULT["cpu_seconds"] = time.perf_counter() - T0, _cpu() - C0
            RESULT["loop_seconds"] = out.metrics["train_runtime"]
            RESULT["dtype"], RESULT["threads"] = str(tr.model.dtype), torch.get_num_threads()
            RESULT["loss"] = [h["loss"] for h in tr.state.log_history if "loss" in h][-1]
        """)
        # The same tokens go through both: the conversations rendered with the chat template.
        import datasets
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(model)
        n_tok = sum(min(args.max_length, len(tok(tok.apply_chat_template(r["messages"], tokenize=False))["input_ids"]))
                    for r in datasets.load_from_disk(str(ours_ds)))

        n_comp = args.prompts * args.G
        ours_grpo = run_isolated(head + f"""
            from trainers.config import GRPOConfig
            from trainers.grpo import train_grpo
            from trainers.runtime import read_metrics
            cfg = GRPOConfig(model={str(model)!r}, dataset={str(prompts)!r}, output_dir={str(tmp / 'o-grpo')!r},
                             rewards={{"format": 1.0}}, prompts_per_step={args.prompts}, num_generations={args.G},
                             micro_batch_size={n_comp}, max_prompt_length=256,
                             max_completion_length={args.completion_length}, max_steps={args.grpo_steps},
                             lr=1e-5, resume_from=None)
            T0, C0 = time.perf_counter(), _cpu()
            train_grpo(cfg)
            RESULT["seconds"], RESULT["cpu_seconds"] = time.perf_counter() - T0, _cpu() - C0
            rows = read_metrics(cfg.output_dir)
            RESULT["completion_tokens"] = sum(r["completion_length"] * {n_comp} for r in rows)
            RESULT["loop_seconds"] = sum(r["step_s"] for r in rows)
        """)
        trl_grpo = run_isolated(head + f"""
            import datasets
            from trl import GRPOConfig, GRPOTrainer
            from trl.rewards import think_format_reward
            ds = datasets.Dataset.from_json({str(prompts)!r})
            ds = ds.map(lambda r: {{"prompt": [{{"role": "user", "content": r["prompt"]}}]}})
            T0, C0 = time.perf_counter(), _cpu()
            args = GRPOConfig(output_dir={str(tmp / 't-grpo')!r}, per_device_train_batch_size={n_comp},
                              num_generations={args.G}, max_completion_length={args.completion_length},
                              max_steps={args.grpo_steps}, learning_rate=1e-5, beta=0.0, loss_type="grpo",
                              report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, temperature=1.0,
                              top_k=0, seed=0, gradient_checkpointing=False)
            tr = GRPOTrainer(model={str(model)!r}, reward_funcs=[think_format_reward], args=args, train_dataset=ds)
            out = tr.train()
            RESULT["seconds"], RESULT["cpu_seconds"] = time.perf_counter() - T0, _cpu() - C0
            RESULT["loop_seconds"] = out.metrics["train_runtime"]
            RESULT["completion_tokens"] = sum(h["completions/mean_length"] * {n_comp}
                                              for h in tr.state.log_history if "completions/mean_length" in h)
        """)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def rate(tokens: float, m) -> float:  # type: ignore[no-untyped-def]
        """Tokens per second of the training loop (model load and setup excluded on both sides)."""
        return tokens / m.result["loop_seconds"]

    s_ours, s_trl = rate(n_tok, ours_sft), rate(n_tok, trl_sft)
    g_ours = rate(ours_grpo.result["completion_tokens"], ours_grpo)
    g_trl = rate(trl_grpo.result["completion_tokens"], trl_grpo)
    params = f"hidden {args.hidden}, {args.layers} layers"
    print_table(f"Trainers on CPU, 1 thread ({params}); tokens/s over the training loop", [
        (f"SFT tokens/s ({args.examples} convs, {n_tok} tokens, batch {args.batch}, padded)", f"{s_ours:,.0f}",
         f"TRL SFTTrainer {s_trl:,.0f} tok/s → ×{s_ours / s_trl:.2f}"),
        ("SFT CPU seconds, end to end (load included)", f"{ours_sft.cpu_seconds:.1f}",
         f"TRL {trl_sft.cpu_seconds:.1f} → ×{trl_sft.cpu_seconds / ours_sft.cpu_seconds:.2f} less"),
        ("SFT peak RSS MB", f"{ours_sft.peak_rss_mb:.0f}", f"TRL {trl_sft.peak_rss_mb:.0f}"),
        ("TRL model dtype / torch threads (same as ours)", f"{trl_sft.result['dtype']} / {trl_sft.result['threads']}", ""),
        ("SFT last-step loss", f"{ours_sft.result['loss']:.3f}", f"TRL {trl_sft.result['loss']:.3f}"),
        (f"GRPO completion tokens/s ({args.grpo_steps} steps × {args.prompts}×{args.G}, ≤{args.completion_length} tok)",
         f"{g_ours:,.0f}", f"TRL GRPOTrainer {g_trl:,.0f} tok/s → ×{g_ours / g_trl:.2f}"),
        ("GRPO loop seconds per step", f"{ours_grpo.result['loop_seconds'] / args.grpo_steps:.2f}",
         f"TRL {trl_grpo.result['loop_seconds'] / args.grpo_steps:.2f}"),
        ("GRPO CPU seconds, end to end", f"{ours_grpo.cpu_seconds:.1f}", f"TRL {trl_grpo.cpu_seconds:.1f}"),
        ("GRPO peak RSS MB", f"{ours_grpo.peak_rss_mb:.0f}", f"TRL {trl_grpo.peak_rss_mb:.0f}"),
        *rollouts,
    ])


if __name__ == "__main__":
    main()
