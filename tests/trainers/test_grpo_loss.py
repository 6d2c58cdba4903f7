"""The GRPO loss: parity with TRL's GRPOTrainer per loss type, clipping, KL, masking, accumulation."""

from __future__ import annotations

import pytest
import torch

from trainers.grpo_loss import LOSS_TYPES, TRL_LOSS_TYPE, group_advantages, grpo_loss

B, T, MAX_LEN = 6, 7, 7


def fixed_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Log-probs, old/ref log-probs far enough apart that both clip regions and the KL term fire."""
    g = torch.Generator().manual_seed(seed)
    logps = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    old = logps + (torch.rand(B, T, generator=g, dtype=torch.float64) - 0.5) * 0.8
    ref = logps + (torch.rand(B, T, generator=g, dtype=torch.float64) - 0.5) * 1.0
    adv = torch.tensor([1.5, -0.7, 0.0, 0.3, -1.2, 0.9], dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5, 1, 6, 4])
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()
    mask[3] = 0  # a masked truncated completion: no token of it carries loss
    return {"logps": logps, "old": old, "ref": ref, "adv": adv, "mask": mask}


@pytest.fixture(scope="module")
def trl_trainer(tmp_path_factory):
    """A real TRL GRPOTrainer on a tiny local model; only its loss code is exercised."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from dataengine.tinymodel import build_tiny_model

    d = tmp_path_factory.mktemp("trl")
    path = build_tiny_model(d / "model")
    args = GRPOConfig(output_dir=str(d / "out"), beta=0.04, epsilon=0.2, epsilon_high=0.28,
                      max_completion_length=MAX_LEN, per_device_train_batch_size=B, num_generations=3,
                      report_to=[], use_cpu=True)
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(path),
                          reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=args,
                          train_dataset=Dataset.from_dict({"prompt": ["hi"] * B}),
                          processing_class=AutoTokenizer.from_pretrained(path))
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def trl_loss(trainer, loss_type: str, beta: float, batch: dict[str, torch.Tensor],
             kl_correction: bool = False) -> torch.Tensor:
    """TRL's `_compute_loss` on our fixed log-probs (the model forward is replaced by the batch)."""
    logps = batch["logps"].clone().requires_grad_(True)
    trainer.loss_type, trainer.beta = loss_type, beta
    trainer.args.use_bias_correction_kl = kl_correction
    trainer._get_per_token_logps_and_entropies = lambda *a, **k: (logps, torch.zeros_like(logps), None)
    inputs = {
        "prompt_ids": torch.ones(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
        "completion_ids": torch.ones(B, T, dtype=torch.long), "completion_mask": batch["mask"],
        "advantages": batch["adv"], "old_per_token_logps": batch["old"], "ref_per_token_logps": batch["ref"],
        "num_items_in_batch": batch["mask"].sum(),
    }
    trainer.model.train()
    return trainer._compute_loss(trainer.model, inputs), logps


@pytest.mark.parametrize(("beta", "kl_correction"), [(0.0, False), (0.04, False), (0.04, True)])
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_loss_and_gradient_equal_trl(trl_trainer, loss_type, beta, kl_correction):
    batch = fixed_batch()
    theirs, their_logps = trl_loss(trl_trainer, TRL_LOSS_TYPE[loss_type], beta, batch, kl_correction)
    ours_logps = batch["logps"].clone().requires_grad_(True)
    ours, metrics = grpo_loss(ours_logps, batch["old"], batch["ref"], batch["adv"], batch["mask"],
                              loss_type=loss_type, eps_low=0.2, eps_high=0.28, beta=beta,
                              kl_ratio_correction=kl_correction,
                              max_completion_length=MAX_LEN)
    assert abs(ours.item() - theirs.item()) < 1e-6
    theirs.backward()
    ours.backward()
    assert torch.allclose(ours_logps.grad, their_logps.grad, atol=1e-6)
    # the batch is built so that both clip regions fire; a masked row carries no gradient
    assert metrics["clip_low"] > 0 and metrics["clip_high"] > 0
    assert torch.all(ours_logps.grad[3] == 0)
    assert (metrics["kl"] > 0) == (beta > 0)


def test_group_advantages_match_trl_formula():
    from trl.trainer.utils import nanstd

    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    adv, zero = group_advantages(r, 4)
    g = r.view(-1, 4)
    expected = (g - g.mean(1, keepdim=True)) / (nanstd(g, dim=1).unsqueeze(1) + 1e-4)
    assert torch.allclose(adv, expected.reshape(-1))
    assert zero.tolist() == [False] * 4 + [True] * 4 and torch.all(adv[4:] == 0)
    adv_dr, _ = group_advantages(r, 4, scale=False)  # Dr. GRPO: no division by std
    assert torch.allclose(adv_dr[:4], torch.tensor([0.5, -0.5, -0.5, 0.5]))
    # an unscorable completion (NaN) is left out of its group's baseline and gets no advantage
    nan = torch.tensor([1.0, float("nan"), 0.0, 1.0])
    adv_nan, _ = group_advantages(nan, 4)
    kept = torch.tensor([1.0, 0.0, 1.0])
    expected = (kept - kept.mean()) / (kept.std() + 1e-4)
    assert adv_nan[1] == 0 and torch.allclose(adv_nan[[0, 2, 3]], expected)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_accumulated_micro_batches_equal_one_batch(loss_type):
    """With the step totals passed in, micro-batch losses sum to the full-batch loss."""
    b = fixed_batch(1)
    kw = dict(loss_type=loss_type, beta=0.04, max_completion_length=MAX_LEN)
    full, _ = grpo_loss(b["logps"], b["old"], b["ref"], b["adv"], b["mask"], **kw)
    parts = sum(
        grpo_loss(b["logps"][s], b["old"][s], b["ref"][s], b["adv"][s], b["mask"][s],
                  num_sequences=B, num_tokens=b["mask"].sum(), **kw)[0]
        for s in (slice(0, 2), slice(2, 6))
    )
    assert torch.allclose(full, parts, atol=1e-12)


def test_on_policy_gradient_is_advantage_weighted_log_prob():
    """At ratio 1 no clipping applies: d loss / d logp = -A / |o| per token (seq_mean_token_mean)."""
    logps = torch.zeros(2, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    loss, _ = grpo_loss(logps, None, None, torch.tensor([2.0, -1.0], dtype=torch.float64), mask)
    loss.backward()
    assert torch.allclose(logps.grad[0], torch.full((4,), -2.0 / 4 / 2, dtype=torch.float64))
    assert torch.allclose(logps.grad[1], torch.tensor([0.25, 0.25, 0, 0], dtype=torch.float64))


def test_bad_arguments_are_named():
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="loss_type"):
        grpo_loss(x, None, None, torch.zeros(1), x, loss_type="bnpo")
    with pytest.raises(ValueError, match="ref_logps"):
        grpo_loss(x, None, None, torch.zeros(1), x, beta=0.1)
    with pytest.raises(ValueError, match="max_completion_length"):
        grpo_loss(x, None, None, torch.zeros(1), x, loss_type="constant_norm")


def test_truncated_importance_sampling_weights_the_policy_term_only():
    """TIS (vLLM rollouts): the policy term is weighted by min(π_old / π_sampler, cap), detached; the
    KL term is not; a sampler that agrees with the trainer changes nothing."""
    from trainers.grpo_loss import importance_weights

    torch.manual_seed(0)
    logps = torch.log(torch.rand(4, 5) * 0.9 + 0.05).requires_grad_()
    ref = logps.detach() + 0.1 * torch.randn(4, 5)
    adv, mask = torch.tensor([1.0, -1.0, 0.5, -0.5]), torch.ones(4, 5)
    mask[2, 3:] = 0
    base, _ = grpo_loss(logps, None, ref, adv, mask, beta=0.1)
    same, m = grpo_loss(logps, None, ref, adv, mask, beta=0.1, sampling_logps=logps.detach())
    assert torch.allclose(base, same) and float(m["is_ratio"]) == pytest.approx(1.0)
    assert float(m["sampler_logp_diff"]) == 0.0

    shift = torch.tensor([[2.0], [-0.3], [0.1], [0.0]]).expand(4, 5)  # sampler log-probs lower/higher
    sampling = logps.detach() - shift
    w = importance_weights(logps.detach(), sampling, mask, "token_truncate", 2.0)
    assert torch.allclose(w, torch.exp(shift * mask).clamp(max=2.0))
    masked = importance_weights(logps.detach(), sampling, mask, "token_mask", 2.0)
    assert (masked[0] == 0).all() and torch.allclose(masked[1:], w[1:])
    seq = importance_weights(logps.detach(), sampling, mask, "sequence_truncate", 2.0)
    assert seq.shape == (4, 1) and float(seq[1]) == pytest.approx(float(torch.exp(torch.tensor(-1.5))))
    # on-policy gradient of the weighted loss = advantage × weight × ∇log π per token
    loss, m = grpo_loss(logps, None, None, adv, mask, sampling_logps=sampling, is_cap=2.0)
    (grad,) = torch.autograd.grad(loss, logps)
    expected = -(adv[:, None] * w * mask) / mask.sum(-1, keepdim=True) / 4
    assert torch.allclose(grad, expected, atol=1e-6)
    assert float(m["is_capped"]) == pytest.approx(5 / 18)  # row 0's 5 tokens of 18 carry the cap
