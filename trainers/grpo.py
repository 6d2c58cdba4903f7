"""GRPO with rule rewards (DeepSeekMath; R1-Zero and R1's reasoning RL), thin and readable.

Each step: take prompts, sample G completions per prompt from the current policy through the engine
interface (`rollout_engine`: the live model in process, or a colocated vLLM that gets the weights
after every optimizer step, its sampler/trainer mismatch corrected by truncated importance
sampling), score them with weighted rewards, normalise rewards within each group into advantages,
then take `num_iterations` optimizer steps on the clipped surrogate (trainers/grpo_loss.py).

    python -m trainers.grpo --config examples/train/r1_zero_grpo_qwen2.5_math.yaml
    torchrun --nproc-per-node 8 -m trainers.grpo --config examples/train/r1_zero_grpo_qwen2.5_math.yaml

Under torchrun each rank samples its own prompts (whole groups, so advantages stay local) and the
loss normalisers (completions, tokens) are summed over ranks, so the update equals one big batch's.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from dataengine.engines.base import GenerationRequest, SamplingParams
from dataengine.engines.transformers_engine import TransformersEngine
from trainers.config import GRPOConfig
from trainers.data import load_table
from trainers.grpo_loss import group_advantages, grpo_loss
from trainers.rewards import get_reward
from trainers.rollout import VLLMRollout, completion_ids, render_prompt
from trainers.runtime import (
    Dist,
    MetricsLogger,
    autocast,
    build_optimizer,
    clip_grad_norm,
    cosine_schedule,
    load_checkpoint,
    load_model,
    resolve_resume,
    save_checkpoint,
    seed_everything,
    shard_fsdp2,
)


def pad_right(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(1, max(len(s) for s in seqs))
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


def pad_right_float(seqs: list[list[float]]) -> torch.Tensor:
    width = max(1, max(len(s) for s in seqs))
    return torch.tensor([s + [0.0] * (width - len(s)) for s in seqs], dtype=torch.float32)


def pad_left(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([[value] * (width - len(s)) + s for s in seqs], dtype=torch.long)


def completion_logps(model: torch.nn.Module, prompt: torch.Tensor, prompt_mask: torch.Tensor,
                     completion: torch.Tensor, completion_mask: torch.Tensor,
                     temperature: float, prompt_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probs and entropies of the completion tokens under `model`, at the sampling
    temperature (the distribution the tokens were drawn from).

    `prompt_index` [B]: `prompt`/`prompt_mask` hold each distinct prompt once ([P, Lp]) and completion
    row b continues prompt `prompt_index[b]`. The G completions of a group then share one forward of
    their prompt (its keys and values copied per completion, gradients summed back through the copy)
    instead of G forwards of the same tokens: the same log-probs and gradients for about
    (P * Lp + B * Lc) / (B * (Lp + Lc)) of the tokens."""
    n = completion.size(1)
    if prompt_index is None:
        input_ids = torch.cat([prompt, completion], dim=1)  # [B, Lp + Lc]
        attention = torch.cat([prompt_mask, completion_mask], dim=1)  # [B, Lp + Lc]
        # Left padding: positions count real tokens only, as `generate` numbered them.
        position_ids = (attention.cumsum(-1) - 1).clamp(min=0)  # [B, Lp + Lc]
        logits = model(input_ids=input_ids, attention_mask=attention, position_ids=position_ids,
                       logits_to_keep=n + 1, use_cache=False).logits[:, :-1]  # [B, Lc, V]
    else:
        from transformers import DynamicCache

        from dataengine.engines.transformers_engine import cache_kwarg

        key = cache_kwarg(model)
        cache = DynamicCache(config=model.config)
        p_pos = (prompt_mask.cumsum(-1) - 1).clamp(min=0)  # [P, Lp]
        last = model(input_ids=prompt, attention_mask=prompt_mask, position_ids=p_pos,
                     use_cache=True, logits_to_keep=1, **{key: cache}).logits  # [P, 1, V] predicts completion token 0
        cache.batch_select_indices(prompt_index)  # [B, heads, Lp, d] per layer
        attention = torch.cat([prompt_mask[prompt_index], completion_mask], dim=1)  # [B, Lp + Lc]
        c_pos = (attention.cumsum(-1) - 1).clamp(min=0)[:, prompt.size(1):]  # [B, Lc]
        rest = model(input_ids=completion[:, :-1], attention_mask=attention[:, :-1], position_ids=c_pos[:, :-1],
                     use_cache=True, **{key: cache}).logits  # [B, Lc - 1, V] predicts completion tokens 1..
        logits = torch.cat([last[prompt_index], rest], dim=1)  # [B, Lc, V]
    logits = logits.float() / temperature  # [B, Lc, V] position t predicts completion token t
    logp_all = logits.log_softmax(-1)  # [B, Lc, V]
    logps = logp_all.gather(-1, completion.unsqueeze(-1)).squeeze(-1)  # [B, Lc]
    with torch.no_grad():  # a metric: no autograd record of the [B, Lc, V] products
        entropy = -(logp_all.exp() * logp_all).sum(-1)  # [B, Lc]
    return logps, entropy


def prompt_messages(row: dict[str, Any], cfg: GRPOConfig) -> list[dict[str, str]]:
    value = row[cfg.prompt_field]
    messages = value if isinstance(value, list) else [{"role": "user", "content": str(value)}]
    if cfg.system_prompt and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": cfg.system_prompt}, *messages]
    return messages


def score(rewards: list[tuple[str, Any, float, dict]], prompts: list[Any], texts: list[str],
          columns: dict[str, list[Any]]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the rewards [N] and each reward's raw values. NaN (unscorable) counts as 0 in
    the sum only when another reward scored the completion; a completion no reward scored stays NaN."""
    per_fn = {}
    for name, fn, _, kwargs in rewards:
        values = fn(prompts, texts, **columns, **kwargs)
        if len(values) != len(texts):
            raise ValueError(f"reward {name}: returned {len(values)} values for {len(texts)} completions")
        per_fn[name] = torch.tensor(values, dtype=torch.float64)
    stacked = torch.stack([per_fn[name] * weight for name, _, weight, _ in rewards], dim=1)  # [N, F]
    total = stacked.nansum(dim=1)  # [N]
    total[torch.isnan(stacked).all(dim=1)] = math.nan
    return total, per_fn


def train_grpo(cfg: GRPOConfig, *, stop_after: int | None = None) -> dict[str, Any]:
    """Train; returns final figures. `stop_after`: end after that many steps of this process, writing a
    checkpoint there (a simulated preemption, for tests)."""
    # ---- setup --------------------------------------------------------------------------------
    cfg.require_inputs()
    dist = Dist()
    seed_everything(cfg.seed + dist.rank)
    out = Path(cfg.output_dir)
    model, tok = load_model(cfg.model, dist, cfg.attn_implementation, cfg.gradient_checkpointing)
    ref_model = None
    if cfg.beta != 0.0:  # beta = 0 loads no reference model
        ref_model, _ = load_model(cfg.model, dist, cfg.attn_implementation)
        ref_model.eval().requires_grad_(False)
    rewards = [(name, get_reward(name), float(w), cfg.reward_kwargs.get(name, {})) for name, w in cfg.rewards.items()]
    unknown_kwargs = set(cfg.reward_kwargs) - set(cfg.rewards)
    if unknown_kwargs:
        raise ValueError(f"reward_kwargs: {sorted(unknown_kwargs)} are not in rewards")

    # ---- data ---------------------------------------------------------------------------------
    table = load_table(cfg.dataset, cfg.split)
    if cfg.prompt_field not in table.column_names:
        raise ValueError(f"{cfg.dataset}: no {cfg.prompt_field!r} column; columns: {', '.join(table.column_names)}")

    def epoch_order(epoch: int) -> list[int]:
        return torch.randperm(len(table), generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)).tolist()

    # ---- model, optimizer, resume -------------------------------------------------------------
    model = shard_fsdp2(model, dist)
    model.train()
    # transformers: the engine samples from the live model, always the current weights. vllm: a
    # colocated engine, given the weights before each rollout (weights_version counts updates).
    vllm_rollout = VLLMRollout(cfg, dist.rank) if cfg.rollout_engine == "vllm" else None
    engine = vllm_rollout or TransformersEngine.from_model(
        model, tok, batch_size=max(1, cfg.micro_batch_size // cfg.num_generations))
    use_tis = vllm_rollout is not None and cfg.vllm_importance_sampling_correction
    optimizer = build_optimizer(model, cfg)
    scheduler = cosine_schedule(optimizer, cfg, cfg.max_steps * cfg.num_iterations)
    step, epoch, cursor = 0, 0, 0
    logger = MetricsLogger(out, cfg.report_to, dist, asdict(cfg))
    ckpt = resolve_resume(cfg)
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, optimizer, scheduler, dist)
        step, epoch, cursor = state["step"], state["epoch"], state["cursor"]
        logger.truncate_after(step)
        if dist.main:
            print(f"resumed from {ckpt} at step {step}", file=sys.stderr)
    order = epoch_order(epoch)
    sampling = SamplingParams(n=cfg.num_generations, temperature=cfg.temperature, top_p=cfg.top_p,
                              max_tokens=cfg.max_completion_length)
    G = cfg.num_generations
    # One forward per prompt for its G completions (completion_logps). Single process, full attention
    # only: FSDP2, gradient checkpointing (no cache) and sliding-window layers keep one forward over
    # prompt + completion per row.
    share_prompts = (G > 1 and dist.world == 1 and not cfg.gradient_checkpointing
                     and all(t == "full_attention" for t in getattr(model.config, "layer_types", None) or ["full_attention"]))

    def save(name: str | None = None) -> Path:
        return save_checkpoint(out, step, model, tok, optimizer, scheduler, cfg, dist,
                               {"epoch": epoch, "cursor": cursor}, cfg.keep_checkpoints, name)

    # ---- loop ---------------------------------------------------------------------------------
    steps_this_run = 0
    while step < cfg.max_steps:
        t0 = time.perf_counter()
        # prompts: every rank walks the same seeded order and takes its own share
        picked = []
        while len(picked) < cfg.prompts_per_step * dist.world:
            if cursor >= len(order):
                epoch, cursor = epoch + 1, 0
                order = epoch_order(epoch)
            picked.append(order[cursor])
            cursor += 1
        rows = [table[i] for i in picked[dist.rank :: dist.world]]
        rendered = [render_prompt(tok, prompt_messages(r, cfg), cfg.max_prompt_length) for r in rows]
        requests = [GenerationRequest(f"s{step}-p{i}", prompt=text, params=sampling)
                    for i, (text, _) in enumerate(rendered)]
        sync_s = 0.0
        if vllm_rollout is not None:
            # exact prompt ids; a seed per request from (seed, step, rank, prompt): a resumed run
            # draws the same samples
            for i, (req, (_, ids)) in enumerate(zip(requests, rendered)):
                req.metadata["prompt_token_ids"] = ids
                req.params = replace(sampling, seed=(cfg.seed * 1_000_003 + (step * dist.world + dist.rank)
                                                     * cfg.prompts_per_step + i) % (1 << 31))
            sync_s = vllm_rollout.sync(model, step)  # weights after `step` optimizer steps

        # rollouts from the current weights
        model.eval()
        results = engine.generate(requests)
        model.train()
        failed = [r.error for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"rollout failed: {failed[0]}")
        comps = [c for res in results for c in res.completions]  # N = P * G, groups contiguous
        p_ids = [ids for _, ids in rendered for _ in range(G)]
        c_ids = [completion_ids(tok, c)[: cfg.max_completion_length] for c in comps]
        s_logps = [c.logprobs[: cfg.max_completion_length] for c in comps] if use_tis else None
        truncated = torch.tensor([c.finish_reason == "length" for c in comps])  # [N]

        # rewards -> group advantages
        columns = {k: [r[k] for r in rows for _ in range(G)] for k in table.column_names if k != cfg.prompt_field}
        columns.update(completion_lengths=[len(c) for c in c_ids], truncated=truncated.tolist(),
                       max_completion_length=cfg.max_completion_length)
        reward, per_fn = score(rewards, [prompt_messages(r, cfg) for r in rows for _ in range(G)],
                               [c.text for c in comps], columns)  # [N]
        unscorable = torch.isnan(reward)  # [N]
        advantages, zero_std = group_advantages(reward, G, scale=cfg.scale_rewards)  # [N], unscorable -> 0
        keep = torch.ones_like(zero_std) if not cfg.dynamic_sampling else ~zero_std  # [N] DAPO: drop flat groups

        # tensors of the kept completions
        idx = keep.nonzero().squeeze(1).tolist()
        loss_mask_rows = [0.0 if (cfg.mask_truncated_completions and truncated[i]) else 1.0 for i in idx]
        n_seq = dist.all_sum(len(idx))
        n_tok = dist.all_sum(sum(len(c_ids[i]) * m for i, m in zip(idx, loss_mask_rows)))
        micro = []
        for s in range(0, len(idx), cfg.micro_batch_size):
            part = idx[s : s + cfg.micro_batch_size]
            completion = pad_right([c_ids[i] for i in part], tok.pad_token_id)  # [b, Lc]
            c_mask = pad_right([[1] * len(c_ids[i]) for i in part], 0)  # [b, Lc]
            index = None
            if share_prompts and completion.size(1) > 1:  # each prompt once, its completions point at it
                first: dict[int, int] = {}
                for i in part:
                    first.setdefault(i // G, len(first))
                rows_p = [p_ids[g * G] for g in first]
                index = torch.tensor([first[i // G] for i in part])  # [b]
            else:
                rows_p = [p_ids[i] for i in part]
            batch = {"prompt": pad_left(rows_p, tok.pad_token_id), "prompt_mask": pad_left([[1] * len(r) for r in rows_p], 0),
                     "completion": completion, "completion_mask": c_mask,
                     "loss_mask": c_mask * torch.tensor(loss_mask_rows[s : s + len(part)])[:, None],
                     "advantages": advantages[part].float()}
            if index is not None:
                batch["prompt_index"] = index
            if s_logps is not None:
                batch["sampling_logps"] = pad_right_float([s_logps[i] for i in part])  # [b, Lc]
            micro.append({k: v.to(dist.device) for k, v in batch.items()})

        # old (sampling-time) and reference log-probs: no grad
        with torch.no_grad(), autocast(dist, cfg.bf16):
            for mb in micro:
                args = (mb["prompt"], mb["prompt_mask"], mb["completion"], mb["completion_mask"], cfg.temperature,
                        mb.get("prompt_index"))
                mb["old_logps"] = completion_logps(model, *args)[0] if cfg.num_iterations > 1 else None
                mb["ref_logps"] = completion_logps(ref_model, *args)[0] if ref_model is not None else None

        # policy update(s)
        stat_keys = ["kl", "clip_low", "clip_high", "clip_region"] + (
            ["is_ratio", "is_capped", "sampler_logp_diff"] if use_tis else [])
        stats: dict[str, float] = {"loss": 0.0, "entropy": 0.0, **dict.fromkeys(stat_keys, 0.0)}
        grad_norm = 0.0
        lr = scheduler.get_last_lr()[0]
        for _ in range(cfg.num_iterations):
            for mb in micro:
                with autocast(dist, cfg.bf16):
                    args = (mb["prompt"], mb["prompt_mask"], mb["completion"], mb["completion_mask"], cfg.temperature,
                            mb.get("prompt_index"))
                    logps, entropy = completion_logps(model, *args)
                    loss, m = grpo_loss(logps, mb["old_logps"], mb["ref_logps"], mb["advantages"], mb["loss_mask"],
                                        loss_type=cfg.loss_type, eps_low=cfg.epsilon_low, eps_high=cfg.epsilon_high,
                                        beta=cfg.beta, kl_ratio_correction=cfg.kl_ratio_correction,
                                        max_completion_length=cfg.max_completion_length,
                                        num_sequences=n_seq, num_tokens=n_tok,
                                        sampling_logps=mb.get("sampling_logps"),
                                        is_mode=cfg.vllm_importance_sampling_mode,
                                        is_cap=cfg.vllm_importance_sampling_clip_max)
                (loss * dist.world).backward()  # FSDP averages over ranks; the normalisers are already global
                w = float(mb["loss_mask"].sum()) / max(1.0, n_tok) / cfg.num_iterations  # token share of the step
                stats["loss"] += loss.item() / cfg.num_iterations
                for k in stat_keys:
                    stats[k] += float(m[k]) * w
                stats["entropy"] += float((entropy * mb["loss_mask"]).sum()) / max(1.0, n_tok) / cfg.num_iterations
            grad_norm = clip_grad_norm(model, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        step += 1
        steps_this_run += 1

        # metrics, checkpoint
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            lengths = torch.tensor([len(c) for c in c_ids], dtype=torch.float64)
            metrics = {"reward": float(reward.nanmean()), "reward_std": float(reward.nan_to_num(0).std()),
                       "frac_reward_zero_std": float(zero_std.double().mean()),
                       "unscorable": float(unscorable.double().mean()),
                       "completion_length": float(lengths.mean()), "completion_length_min": float(lengths.min()),
                       "completion_length_max": float(lengths.max()),
                       "truncated": float(truncated.double().mean()), "groups_kept": float(keep.double().mean()),
                       "grad_norm": float(grad_norm), "lr": lr,
                       "completion_tokens": dist.all_sum(float(lengths.sum())),
                       "tokens_per_s": float(lengths.sum()) * dist.world / (time.perf_counter() - t0),
                       "step_s": time.perf_counter() - t0, **stats}
            if vllm_rollout is not None:
                metrics["weight_sync_s"] = sync_s
            for name, values in per_fn.items():
                metrics[f"rewards/{name}/mean"] = float(values.nanmean())
                metrics[f"rewards/{name}/std"] = float(values.nan_to_num(0).std())
            logger.log(step, metrics)
        if cfg.save_every and step % cfg.save_every == 0 and step < cfg.max_steps:
            save()
        if stop_after is not None and steps_this_run >= stop_after:
            save()
            logger.close()
            if vllm_rollout is not None:
                vllm_rollout.close()
            return {"step": step, "stopped": True}

    final = save("final")
    logger.close()
    if vllm_rollout is not None:
        vllm_rollout.close()
    return {"step": step, "final": str(final)}


def main(argv: list[str] | None = None) -> None:
    """`python -m trainers.grpo --config FILE` (what `dataengine train grpo` and torchrun run)."""
    import argparse

    from dataengine.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="pipeline YAML with a `train_grpo:` section")
    args = ap.parse_args(argv)
    print(train_grpo(load_config(args.config).section("train_grpo")))


if __name__ == "__main__":
    main()
