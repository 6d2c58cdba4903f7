"""GPU bench: the generate stage with the vllm engine against bare `vllm.LLM.generate`.

Same model, same prompts (demo problems rendered with the rejection-sampling template and the
model's chat template), same SamplingParams(n, temperature 0.6, top_p 0.95, max_tokens). The stage
adds planning, per-batch shard writes and bookkeeping; goal: stage output tokens/s >= 0.95x bare.

Needs a CUDA GPU and the `vllm` extra; a model folder or hub id that is already on the node
(nothing is downloaded unless you pass a hub id and the node is online). Without --model it
builds a tiny local Qwen2 model, which measures the pipeline's overhead rather than the GPU.

    python bench/gpu_bench_vllm.py --model /models/DeepSeek-R1-Distill-Qwen-1.5B --prompts 2000 --n 4 --max-tokens 2048
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _harness import print_table, run_isolated


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="model folder or hub id (default: a tiny model built here)")
    ap.add_argument("--prompts", type=int, default=1000)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=100_000, help="prompts per shard in the stage run")
    ap.add_argument("--tp", type=int, default=1, help="tensor_parallel_size")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    args = ap.parse_args()

    from dataengine.engines.vllm_engine import vllm_available

    ok, why = vllm_available()
    if not ok:
        sys.exit(f"gpu_bench_vllm: {why}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    try:
        model = args.model
        if model is None:
            from dataengine.tinymodel import build_tiny_model

            model = str(build_tiny_model(tmp / "tiny", "qwen2.5"))
        common = dict(model=model, prompts=args.prompts, n=args.n, max_tokens=args.max_tokens, tp=args.tp,
                      mem=args.gpu_memory_utilization)
        bare = run_isolated(f"""
            import vllm
            from dataengine.demo_problems import demo_prompts
            from dataengine.prompting import PromptRenderer
            A = {common!r}
            r = PromptRenderer("rejection_sampling")
            llm = vllm.LLM(model=A["model"], tensor_parallel_size=A["tp"], gpu_memory_utilization=A["mem"], seed=0,
                           enable_prefix_caching=True)
            tok = llm.get_tokenizer()
            texts = [tok.apply_chat_template(r.messages(p.to_row()), tokenize=False, add_generation_prompt=True)
                     for p in demo_prompts(A["prompts"], seed=0)]
            sp = vllm.SamplingParams(n=A["n"], temperature=0.6, top_p=0.95, max_tokens=A["max_tokens"])
            llm.generate(texts[:8], sp, use_tqdm=False)  # warm-up (CUDA graphs, compile)
            T0 = time.perf_counter()
            outs = llm.generate(texts, sp, use_tqdm=False)
            RESULT["seconds"] = time.perf_counter() - T0
            RESULT["tokens"] = sum(len(o.token_ids) for out in outs for o in out.outputs)
            RESULT["samples"] = sum(len(out.outputs) for out in outs)
        """)
        ours = run_isolated("""
            from dataengine.config import load_config_dict
            from dataengine.engines import get_engine
            from dataengine.generate import run_demo_prompts, run_generate
            from dataengine.store import Workspace
            A = {common!r}
            ws = Workspace.init({ws!r})
            cfg = load_config_dict({{"demo_prompts": {{"contaminated_rate": 0.0}}, "generate": {{
                "engine": "vllm", "model": A["model"], "n": A["n"], "max_tokens": A["max_tokens"],
                "batch_size": {batch}, "vllm": {{"tensor_parallel_size": A["tp"], "gpu_memory_utilization": A["mem"]}}}}}})
            run_demo_prompts(ws, cfg, A["prompts"])
            gc = cfg.section("generate")
            eng = get_engine("vllm", **gc.engine_kwargs())  # loaded before T0, as in the bare run
            run_generate(ws, cfg, engine_obj=eng, limit=8, sampling_run="warmup")
            T0 = time.perf_counter()
            c = run_generate(ws, cfg, engine_obj=eng, sampling_run="bench")
            RESULT["seconds"] = time.perf_counter() - T0
            RESULT["tokens"] = c["completion_tokens"]
            RESULT["samples"] = c["out"]
            RESULT["engine_wait_s"] = c["engine_wait_s"]
        """.format(common=common, ws=str(tmp / "ws"), batch=args.batch_size))
        # Both runs load the model and warm up before T0; the stage's time includes planning
        # (reading ids, rendering templates) and writing shards, which is what is measured.
        o_tps, b_tps = ours.result["tokens"] / ours.seconds, bare.result["tokens"] / bare.seconds
        print_table(
            f"vllm: {args.prompts:,} prompts x n={args.n}, max_tokens={args.max_tokens}, model={args.model or 'tiny'}",
            [
                ("stage output tokens/s", f"{o_tps:,.0f}", f"{o_tps / b_tps:.3f}x bare LLM.generate (goal >= 0.95)"),
                ("bare LLM.generate output tokens/s", f"{b_tps:,.0f}", "1.00x (baseline)"),
                ("stage samples/s", f"{ours.result['samples'] / ours.seconds:,.1f}",
                 f"{(ours.result['samples'] / ours.seconds) / (bare.result['samples'] / bare.seconds):.3f}x bare"),
                ("stage seconds (engine wait)", f"{ours.seconds:,.1f} ({ours.result['engine_wait_s']:,.1f})", ""),
            ],
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
