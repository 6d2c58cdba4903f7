"""Trainer throughput on CPU: SFT and GRPO tokens/s, ours against TRL on the same config, same run.

Model: a small Qwen2 built locally (no download), `--hidden`/`--layers` wide/deep, fp32 on both sides
(TRL's default bf16=True is bf16 autocast on CPU: on a CPU without bf16 units it ran ~10x slower,
which is where earlier "9-12x TRL" figures came from; it is turned off here). SFT data: real
HuatuoGPT-o1 reasoning traces from ../shared/data in the exported `messages` shape (TRL gets the same
conversations as prompt/completion pairs; both put loss on the assistant turn only), no packing, TRL
fed the examples in our plan's order with a sequential sampler, so both train on the same batches
(step-1 losses agree). GRPO: GSM8K questions, G completions per prompt, ≤ --completion-length tokens,
HF `generate` rollouts on CPU on both sides, `format` reward, beta 0, one iteration. Each side runs in
a fresh process on --threads torch threads; the first --warmup steps are left out on both; rounds
alternate which side goes first. Tokens: SFT non-pad tokens incl. prompt; GRPO completion tokens.

Where the time goes (torch.profiler, 8 SFT steps, same batches, fp32): both sides spend ~95% in the
same model kernels (mm ~41%, sdpa flash backward ~27-30% and forward ~10%, RoPE/RMSNorm muls ~6%);
the trainer's own work (loss, AdamW, grad norm, collate, logging) is a few %, so SFT is at parity by
construction (all 64 examples exceed --max-length 1024, so there is no padding to save). GRPO: most of
the tokens a step runs are prompt tokens repeated G times (prefill in `generate`, then the policy
forward/backward over prompt + completion); ours now runs each prompt once per group in both.

GRPO rollouts (issue 14): the same GRPO run with `rollout_engine: vllm` (colocated vLLM, weights
pushed every step, TIS) against `rollout_engine: transformers`, both in the vLLM venv
(`make setup-vllm`; `--vllm-python`), same model, prompts and seed; skipped with a note without it.

    python bench/bench_train.py                      # 3 rounds, SFT 8 steps, GRPO 5 steps, first 2 left out
    python bench/bench_train.py --rounds 3 --sft-steps 6 --grpo-steps 4 --warmup 1
    python bench/bench_train.py --only-rollouts --grpo-steps 4 --completion-length 256
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
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


# Child-process snippets. Each records (wall, CPU-s of the process, tokens, loss) at the end of every
# optimizer step, so warm-up steps are left out of both sides the same way. Tokens, SFT: non-pad tokens of
# the batch, prompt included (ours: lengths of the truncated examples; TRL: its `num_tokens`, the
# attention-mask sum). GRPO: completion tokens generated (EOS included when sampled; ours
# `completion_tokens`, TRL `completions/mean_length` × completions).
HEAD = """
    import torch; torch.set_num_threads({threads})
    MARKS = []
"""
OURS_MARKS = """
    import trainers.runtime as _rt
    _log = _rt.MetricsLogger.log
    def _mark(self, step, metrics):
        if "{key}" in metrics:
            MARKS.append([time.perf_counter(), _cpu(), metrics["{key}"], metrics.get("loss", 0.0)])
        return _log(self, step, metrics)
    _rt.MetricsLogger.log = _mark
"""
TRL_MARKS = """
    from transformers import TrainerCallback
    class _Marks(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            MARKS.append([time.perf_counter(), _cpu()])
"""
OURS_SFT = """
    from trainers.config import SFTConfig
    from trainers.sft import train_sft
    cfg = SFTConfig(model={model!r}, dataset={data!r}, output_dir={out!r}, max_length={max_length},
                    batch_size={batch}, grad_accum={accum}, packing=False, max_steps={steps}, lr=1e-4,
                    warmup_steps=1, resume_from=None)
    train_sft(cfg)
    RESULT["marks"] = MARKS
"""
# bf16=False: TRL defaults bf16 on, which on CPU is bf16 autocast (ours trains fp32 on CPU). Sequential
# sampler over the data in our plan's order: both sides train on the same batches.
TRL_SFT = """
    import datasets
    from trl import SFTConfig, SFTTrainer
    ds = datasets.load_from_disk({data!r}).select({order!r})
    args = SFTConfig(output_dir={out!r}, per_device_train_batch_size={batch}, gradient_accumulation_steps={accum},
                     max_length={max_length}, packing=False, max_steps={steps}, learning_rate=1e-4, warmup_steps=1,
                     lr_scheduler_type="cosine", report_to=[], use_cpu=True, save_strategy="no", logging_steps=1,
                     completion_only_loss=True, dataloader_num_workers=0, seed=0, gradient_checkpointing=False,
                     bf16=False, train_sampling_strategy="sequential")
    tr = SFTTrainer(model={model!r}, args=args, train_dataset=ds, callbacks=[_Marks()])
    tr.train()
    logs = [h for h in tr.state.log_history if "loss" in h]
    done = [0.0] + [float(h["num_tokens"]) for h in logs]
    for m, h, a, b in zip(MARKS, logs, done, done[1:]):
        m += [b - a, float(h["loss"])]
    RESULT["marks"] = MARKS
    RESULT["dtype"], RESULT["autocast"] = str(tr.model.dtype), bool(args.bf16 or args.fp16)
"""
OURS_GRPO = """
    from trainers.config import GRPOConfig
    from trainers.grpo import train_grpo
    cfg = GRPOConfig(model={model!r}, dataset={data!r}, output_dir={out!r}, rewards={{"format": 1.0}},
                     prompts_per_step={prompts}, num_generations={G}, micro_batch_size={n_comp}, max_prompt_length=256,
                     max_completion_length={completion_length}, max_steps={steps}, lr=1e-5, resume_from=None)
    train_grpo(cfg)
    RESULT["marks"] = MARKS
"""
TRL_GRPO = """
    import datasets
    from trl import GRPOConfig, GRPOTrainer
    from trl.rewards import think_format_reward
    ds = datasets.Dataset.from_json({data!r}).select({order!r})
    ds = ds.map(lambda r: {{"prompt": [{{"role": "user", "content": r["prompt"]}}]}})
    args = GRPOConfig(output_dir={out!r}, per_device_train_batch_size={n_comp}, num_generations={G},
                      max_completion_length={completion_length}, max_steps={steps}, learning_rate=1e-5, beta=0.0,
                      loss_type="grpo", report_to=[], use_cpu=True, save_strategy="no", logging_steps=1,
                      temperature=1.0, top_k=0, seed=0, gradient_checkpointing=False, bf16=False,
                      shuffle_dataset=False)
    tr = GRPOTrainer(model={model!r}, reward_funcs=[think_format_reward], args=args, train_dataset=ds,
                     callbacks=[_Marks()])
    tr.train()
    logs = [h for h in tr.state.log_history if "completions/mean_length" in h]
    for m, h in zip(MARKS, logs):
        m += [float(h["completions/mean_length"]) * {n_comp}, float(h["loss"])]
    RESULT["marks"] = MARKS
"""


def steady(marks: list[list[float]], warmup: int) -> dict[str, float]:
    """Tokens per wall second and per CPU second over the steps after the first `warmup` (>= 1) ones:
    from the end of step `warmup` to the end of the last step. marks: [wall, cpu, tokens, loss] per step."""
    if warmup < 1 or len(marks) <= warmup:
        raise RuntimeError(f"{len(marks)} steps recorded; --warmup must be >= 1 and below the step count")
    rest = marks[warmup:]
    tokens = sum(m[2] for m in rest)
    wall, cpu = rest[-1][0] - marks[warmup - 1][0], rest[-1][1] - marks[warmup - 1][1]
    return {"tok_s": tokens / wall, "tok_cpu_s": tokens / cpu, "tokens": tokens, "steps": len(rest),
            "loss1": marks[0][3]}


def median_spread(xs: list[float], fmt: str = "{:,.0f}") -> str:
    xs = sorted(xs)
    med = xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
    return f"{fmt.format(med)} [{fmt.format(xs[0])}–{fmt.format(xs[-1])}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--sft-steps", type=int, default=8)
    ap.add_argument("--grpo-steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2, help="steps left out of the rate on both sides")
    ap.add_argument("--rounds", type=int, default=3, help="alternating ours/TRL rounds; median and spread")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    ap.add_argument("--prompts", type=int, default=4, help="prompts per GRPO step")
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--completion-length", type=int, default=64)
    ap.add_argument("--only", choices=["sft", "grpo"], help="one trainer only")
    ap.add_argument("--vllm-python", default=str(ROOT / ".venv-vllm" / "bin" / "python"),
                    help="interpreter of the vLLM venv, for the rollout comparison")
    ap.add_argument("--only-rollouts", action="store_true", help="only GRPO vllm vs transformers rollouts")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        from dataengine.tinymodel import build_tiny_model
        from trainers.data import plan_micro_batches

        model = build_tiny_model(tmp / "model", hidden_size=args.hidden, num_layers=args.layers,
                                 num_heads=max(4, args.hidden // 64))
        ours_ds, trl_ds, prompts = make_data(tmp, args.examples)
        if args.only_rollouts:
            print_table(f"GRPO rollouts on CPU, 1 thread (hidden {args.hidden}, {args.layers} layers)",
                        rollout_rows(args, model, prompts, tmp))
            return
        # The order our trainers take the data in (epoch 0, seed 0); TRL gets it pre-ordered, unshuffled.
        sft_order = [i for mb in plan_micro_batches([1] * args.examples, args.batch, args.max_length, False, 0, 0)
                     for row in mb for i in row]
        import torch
        grpo_order = torch.randperm(64, generator=torch.Generator().manual_seed(0)).tolist()  # trainers/grpo.py epoch_order
        n_comp = args.prompts * args.G
        common = dict(model=str(model), max_length=args.max_length, batch=args.batch, accum=args.grad_accum,
                      prompts=args.prompts, G=args.G, n_comp=n_comp, completion_length=args.completion_length)
        jobs = {
            ("sft", "ours"): HEAD + OURS_MARKS.format(key="tokens") + OURS_SFT.format(
                data=str(ours_ds), out=str(tmp / "o-sft"), steps=args.sft_steps, **common),
            ("sft", "trl"): HEAD + TRL_MARKS + TRL_SFT.format(
                data=str(trl_ds), out=str(tmp / "t-sft"), steps=args.sft_steps, order=sft_order, **common),
            ("grpo", "ours"): HEAD + OURS_MARKS.format(key="completion_tokens") + OURS_GRPO.format(
                data=str(prompts), out=str(tmp / "o-grpo"), steps=args.grpo_steps, **common),
            ("grpo", "trl"): HEAD + TRL_MARKS + TRL_GRPO.format(
                data=str(prompts), out=str(tmp / "t-grpo"), steps=args.grpo_steps, order=grpo_order, **common),
        }
        kinds = [args.only] if args.only else ["sft", "grpo"]
        runs: dict[tuple[str, str], list] = {k: [] for k in jobs}
        for r in range(args.rounds):
            for kind in kinds:
                for side in (("ours", "trl") if r % 2 == 0 else ("trl", "ours")):  # alternate who goes first
                    m = run_isolated(jobs[kind, side].replace("{threads}", str(args.threads)))
                    runs[kind, side].append((steady(m.result["marks"], args.warmup), m))
                    print(f"round {r + 1} {kind} {side}: {runs[kind, side][-1][0]}", file=sys.stderr, flush=True)
        rollouts = [] if args.only else rollout_rows(args, model, prompts, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for kind in kinds:
        o, t = runs[kind, "ours"], runs[kind, "trl"]
        ratio = [a["tok_s"] / b["tok_s"] for (a, _), (b, _) in zip(o, t)]
        ratio_cpu = [a["tok_cpu_s"] / b["tok_cpu_s"] for (a, _), (b, _) in zip(o, t)]
        what = ("non-pad tokens incl. prompt" if kind == "sft" else "completion tokens")
        steps = args.sft_steps if kind == "sft" else args.grpo_steps
        rows += [
            (f"{kind.upper()} {what} / wall s, steps {args.warmup + 1}..{steps}", median_spread([a["tok_s"] for a, _ in o]),
             f"TRL {median_spread([b['tok_s'] for b, _ in t])} → ×{median_spread(ratio, '{:.2f}')}"),
            (f"{kind.upper()} {what} / CPU s, same steps", median_spread([a["tok_cpu_s"] for a, _ in o]),
             f"TRL {median_spread([b['tok_cpu_s'] for b, _ in t])} → ×{median_spread(ratio_cpu, '{:.2f}')}"),
            (f"{kind.upper()} tokens counted per run (ours / TRL)", f"{o[0][0]['tokens']:,.0f}", f"TRL {t[0][0]['tokens']:,.0f}"),
            (f"{kind.upper()} step-1 loss (same init; SFT: same batch)", f"{o[0][0]['loss1']:.4f}", f"TRL {t[0][0]['loss1']:.4f}"),
            (f"{kind.upper()} peak RSS MB", f"{max(m.peak_rss_mb for _, m in o):.0f}",
             f"TRL {max(m.peak_rss_mb for _, m in t):.0f}"),
        ]
    if "sft" in kinds:
        rows.append(("TRL param dtype / autocast (ours: fp32, none on CPU)",
                     f"{runs['sft', 'trl'][0][1].result['dtype']} / {runs['sft', 'trl'][0][1].result['autocast']}", ""))
    settings = (f"hidden {args.hidden}, {args.layers} layers, {args.threads} torch thread(s), fp32, AdamW; "
                f"SFT: {args.examples} real convs truncated to {args.max_length}, batch {args.batch} × accum "
                f"{args.grad_accum}, no packing, {args.sft_steps} steps; GRPO: {args.prompts} prompts × G {args.G}, "
                f"≤{args.completion_length} completion tokens, beta 0, 1 iteration, {args.grpo_steps} steps; "
                f"first {args.warmup} steps left out; {args.rounds} alternating rounds, median [min–max]")
    print_table(f"Trainers on CPU, ours vs TRL ({settings})", rows + rollouts)


if __name__ == "__main__":
    main()
