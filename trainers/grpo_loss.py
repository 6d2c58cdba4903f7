"""The GRPO objective as two small pure functions: group advantages and the clipped policy loss.

Nothing here touches a model: inputs are per-token log-probs, advantages and masks, so the loss is
testable on fixed tensors (tests/trainers/test_grpo_loss.py checks it against TRL's GRPOTrainer).

Loss aggregations (how per-token losses become one number):

- ``seq_mean_token_mean`` (GRPO, DeepSeekMath): mean over tokens within each completion, then mean over
  completions. Long completions weigh as much as short ones.            (TRL ``loss_type="grpo"``)
- ``token_mean`` (DAPO): sum over all tokens / number of tokens in the batch. Every token weighs the
  same, so long wrong answers are not under-penalised.                  (TRL ``loss_type="dapo"``)
- ``constant_norm`` (Dr. GRPO): sum over all tokens / (completions × max_completion_length), a
  constant that removes the length bias of both.                        (TRL ``loss_type="dr_grpo"``)

>>> import torch
>>> logps = torch.log(torch.full((2, 3), 0.5))
>>> loss, m = grpo_loss(logps, None, None, torch.tensor([1.0, -1.0]), torch.ones(2, 3))
>>> round(loss.item(), 6)  # on-policy: ratio 1, the two advantages cancel
0.0
"""

from __future__ import annotations

import torch

from trainers.config import LEGACY_LOSS_TYPES

# The matching `loss_type` of TRL's GRPOTrainer (the config's names), for the parity test.
TRL_LOSS_TYPE = LEGACY_LOSS_TYPES
# The aggregations by what they compute; TRL's names are accepted and mapped onto these.
LOSS_TYPES = tuple(TRL_LOSS_TYPE)
_FROM_TRL = {v: k for k, v in TRL_LOSS_TYPE.items()}


def group_advantages(
    rewards: torch.Tensor,  # [N] one reward per completion, N = num_groups * group_size, groups contiguous
    group_size: int,
    scale: bool = True,
    eps: float = 1e-4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-normalised advantages `(r - mean_g) / (std_g + eps)` (DeepSeekMath); `scale=False` is
    Dr. GRPO's `r - mean_g`. std is the unbiased one, as in TRL. A NaN reward (unscorable) is left out
    of its group's mean and std and gets advantage 0. Returns (advantages [N], zero_std [N]): zero_std
    marks completions whose group had no reward spread (no learning signal)."""
    grouped = rewards.view(-1, group_size)  # [G, n]
    scored = ~torch.isnan(grouped)  # [G, n]
    count = scored.sum(dim=1, keepdim=True)  # [G, 1]
    mean = torch.nanmean(grouped, dim=1, keepdim=True).nan_to_num(0.0)  # [G, 1]
    sq = ((grouped - mean) ** 2).nan_to_num(0.0).sum(dim=1, keepdim=True)  # [G, 1]
    std = torch.where(count > 1, (sq / (count - 1).clamp(min=1)).sqrt(), torch.zeros_like(sq))  # [G, 1]
    adv = (grouped - mean).nan_to_num(0.0)  # [G, n]
    if scale:
        adv = adv / (std + eps)
    zero_std = torch.isclose(std, torch.zeros_like(std)).expand_as(grouped)  # [G, n]
    return adv.reshape(-1), zero_std.reshape(-1)


def grpo_loss(
    logps: torch.Tensor,  # [B, T] log π_θ(token) of the sampled completion tokens (requires grad)
    old_logps: torch.Tensor | None,  # [B, T] log π_old at sampling time; None: on-policy (= logps.detach())
    ref_logps: torch.Tensor | None,  # [B, T] log π_ref; only read when beta > 0
    advantages: torch.Tensor,  # [B] one advantage per completion
    mask: torch.Tensor,  # [B, T] 1 on completion tokens that carry loss (0: padding, masked truncations)
    *,
    loss_type: str = "seq_mean_token_mean",
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    beta: float = 0.0,
    kl_ratio_correction: bool = False,
    max_completion_length: int | None = None,
    num_sequences: float | None = None,
    num_tokens: float | None = None,
    sampling_logps: torch.Tensor | None = None,  # [B, T] log-probs the sampler (vLLM) gave; None: no TIS
    is_mode: str = "token_truncate",
    is_cap: float = 2.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate loss with optional k3 KL penalty; returns (loss, detached metrics).

    Under gradient accumulation pass the totals of the whole optimizer step as `num_sequences`
    (completions) and `num_tokens` (mask sum), so that summing the micro-batch losses gives exactly the
    loss of one big batch; by default they are this batch's own totals.

    `sampling_logps`: the rollouts came from another engine (vLLM) whose probabilities differ from the
    trainer's for the same weights (kernels, precision). The policy term is then weighted by the
    detached ratio π_old / π_sampler, truncated at `is_cap` (verl's TIS, TRL's
    vllm_importance_sampling_correction; `is_mode` as TRL's vllm_importance_sampling_mode).
    """
    loss_type = _FROM_TRL.get(loss_type, loss_type)
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type {loss_type!r}: expected one of {', '.join(LOSS_TYPES)}")
    mask = mask.to(logps.dtype)
    if old_logps is None:
        old_logps = logps.detach()
    adv = advantages.unsqueeze(1)  # [B, 1]

    ratio = torch.exp(logps - old_logps)  # [B, T] π_θ / π_old
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)  # [B, T] clip-higher: eps_high may exceed eps_low
    per_token = -torch.min(ratio * adv, clipped * adv)  # [B, T] pessimistic surrogate
    is_weight = None
    if sampling_logps is not None:
        is_weight = importance_weights(old_logps.detach(), sampling_logps, mask, is_mode, is_cap)  # [B, T] or [B, 1]
        per_token = per_token * is_weight  # the policy term only, as TRL; the KL term is exact

    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta > 0 needs ref_logps (the reference model's log-probs)")
        log_r = ref_logps - logps  # [B, T]
        kl = torch.exp(log_r) - log_r - 1  # [B, T] k3 estimator of KL(π_θ || π_ref), always >= 0
        if kl_ratio_correction:
            # DeepSeek-V3.2: weight k3 by the importance ratio so its gradient is the unbiased reverse-KL
            # gradient off-policy (TRL's use_bias_correction_kl, on by default there; off in R1/DeepSeekMath).
            kl = kl * ratio  # [B, T]
        per_token = per_token + beta * kl  # [B, T]
    else:
        kl = None

    num_seq = float(num_sequences) if num_sequences is not None else float(logps.size(0))
    if loss_type == "seq_mean_token_mean":
        per_seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)  # [B]
        loss = per_seq.sum() / num_seq
    elif loss_type == "token_mean":
        denom = torch.as_tensor(num_tokens if num_tokens is not None else mask.sum(), dtype=logps.dtype)
        loss = (per_token * mask).sum() / denom.clamp(min=1.0)
    else:  # constant_norm
        if not max_completion_length:
            raise ValueError("loss_type constant_norm needs max_completion_length")
        loss = (per_token * mask).sum() / (num_seq * max_completion_length)

    with torch.no_grad():
        n_tok = mask.sum().clamp(min=1.0)
        low = ((ratio < 1 - eps_low) & (adv < 0)).to(mask.dtype)  # [B, T] clipped from below
        high = ((ratio > 1 + eps_high) & (adv > 0)).to(mask.dtype)  # [B, T] clipped from above
        metrics = {
            "clip_low": (low * mask).sum() / n_tok,
            "clip_high": (high * mask).sum() / n_tok,
            "clip_region": (((low + high) > 0).to(mask.dtype) * mask).sum() / n_tok,
            "kl": (kl * mask).sum() / n_tok if kl is not None else torch.zeros(()),
        }
        if is_weight is not None:
            w = is_weight.expand_as(mask)
            capped = (w >= is_cap) if is_mode.endswith("truncate") else (w == 0)
            metrics["is_ratio"] = (w * mask).sum() / n_tok
            metrics["is_capped"] = (capped.to(mask.dtype) * mask).sum() / n_tok
            # mean |log π_old - log π_sampler| per token: how far the two engines disagree
            metrics["sampler_logp_diff"] = ((old_logps.detach() - sampling_logps).abs().nan_to_num(0.0) * mask).sum() / n_tok
    return loss, metrics


def importance_weights(
    trainer_logps: torch.Tensor,  # [B, T] log π_old (the trainer at the sampling weights), detached
    sampling_logps: torch.Tensor,  # [B, T] log π_sampler of the same tokens
    mask: torch.Tensor,  # [B, T]
    mode: str = "token_truncate",
    cap: float = 2.0,
) -> torch.Tensor:
    """Truncated importance weights π_old / π_sampler for off-sampler rollouts: per token ([B, T]) or
    per sequence ([B, 1], the product of the token ratios); `*_truncate` clips at `cap`, `*_mask`
    zeroes what exceeds it. Tokens without a sampler log-prob (NaN) get weight 1."""
    diff = ((trainer_logps - sampling_logps) * mask).nan_to_num(0.0)  # [B, T]
    if mode.startswith("sequence"):
        diff = diff.sum(-1, keepdim=True)  # [B, 1]
    ratio = torch.exp(diff.clamp(max=20.0))  # no inf before the cap
    if mode.endswith("truncate"):
        return ratio.clamp(max=cap)
    return ratio.masked_fill(ratio > cap, 0.0)
