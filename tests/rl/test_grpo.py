"""The GRPO core against TRL's GRPOTrainer on the same tensors, and by finite differences."""

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from r1omni.rl.grpo import aggregate, group_advantages, per_token_loss, zero_std_groups

B, T, G = 6, 5, 3


def tensors(seed=0):
    generator = torch.Generator().manual_seed(seed)
    logp = -torch.rand(B, T, generator=generator, dtype=torch.float64) * 3
    old = logp + 0.3 * torch.randn(B, T, generator=generator, dtype=torch.float64)
    ref = logp + 0.2 * torch.randn(B, T, generator=generator, dtype=torch.float64)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 3:] = 0
    mask[4, 1:] = 0
    advantages = torch.randn(B, generator=generator, dtype=torch.float64)
    return logp, old, ref, mask, advantages


class _Accelerator:
    num_processes = 1
    sync_gradients = True

    @staticmethod
    def gather(x):
        return x

    gather_for_metrics = gather

    @staticmethod
    def reduce(x, reduction="sum"):
        return x


def trl_loss(loss_type, logp, old, ref, mask, advantages, beta, eps_low, eps_high, importance):
    """TRL's own `_compute_loss`, with the model's log-prob pass replaced by our tensors."""
    from trl import GRPOTrainer

    trainer = object.__new__(GRPOTrainer)
    trainer.__dict__.update(
        loss_type=loss_type, beta=beta, epsilon_low=eps_low, epsilon_high=eps_high,
        importance_sampling_level=importance, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        use_vllm=False, vllm_importance_sampling_correction=False, aux_loss_enabled=False,
        _entropy_bonus_enabled=False, current_gradient_accumulation_steps=1, max_completion_length=T,
        accelerator=_Accelerator(), model=SimpleNamespace(training=True),
        _metrics=defaultdict(lambda: defaultdict(list)),
        args=SimpleNamespace(delta=None, use_bias_correction_kl=False, steps_per_generation=1),
    )
    trainer._get_per_token_logps_and_entropies = lambda *a, **k: (logp, torch.zeros_like(logp), None)
    inputs = {"prompt_ids": torch.zeros(B, 1, dtype=torch.long), "prompt_mask": torch.ones(B, 1, dtype=torch.long),
              "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": mask,
              "advantages": advantages, "old_per_token_logps": old, "ref_per_token_logps": ref,
              "num_items_in_batch": mask.sum()}
    return trainer._compute_loss(None, inputs)


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("importance", ["token", "sequence"])
@pytest.mark.parametrize("eps_high", [0.2, 0.28])
def test_losses_match_trl(loss_type, beta, importance, eps_high):
    logp, old, ref, mask, advantages = tensors()
    expected = trl_loss(loss_type, logp, old, ref, mask, advantages, beta, 0.2, eps_high, importance)
    per_token, _ = per_token_loss(logp, old, advantages, mask, epsilon_low=0.2, epsilon_high=eps_high,
                                  beta=beta, ref_logp=ref, importance=importance)
    ours = aggregate(per_token, mask, loss_type, max_completion_length=T, active_tokens=float(mask.sum()))
    assert torch.allclose(ours, expected, rtol=1e-10, atol=1e-12)


def trl_advantages(rewards, scale):
    """TRL's advantage lines (grpo_trainer, sum_then_normalize), with its own nanstd."""
    from trl.trainer.utils import nanstd

    mean = torch.nanmean(rewards.view(-1, G), dim=1).repeat_interleave(G)
    if scale in ("group", "none"):
        std = nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G)
    else:
        std = nanstd(rewards).expand_as(rewards)
    advantages = rewards - mean
    return advantages if scale == "none" else advantages / (std + 1e-4)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_advantages_match_trl(scale):
    rewards = torch.tensor([1.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 2.0, 2.0], dtype=torch.float64)
    assert torch.allclose(group_advantages(rewards, G, scale), trl_advantages(rewards, scale))


def test_zero_variance_groups_and_their_advantages():
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0, 2.0, 1.0])
    assert zero_std_groups(rewards, G).tolist() == [True, False]
    assert torch.equal(group_advantages(rewards, G)[:3], torch.zeros(3))  # no signal, no push


def test_gradients_by_finite_differences():
    """d loss / d logp from autograd equals central differences, for every loss type."""
    logp, old, ref, mask, advantages = tensors(1)
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo"):
        for importance in ("token", "sequence"):
            def loss_of(x):
                per_token, _ = per_token_loss(x, old, advantages, mask, 0.2, 0.28, 0.04, ref, importance)
                return aggregate(per_token, mask, loss_type, T, float(mask.sum()))

            x = logp.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss_of(x), x)
            numeric = torch.zeros_like(logp)
            h = 1e-6
            for i in range(B):
                for j in range(T):
                    bump = torch.zeros_like(logp)
                    bump[i, j] = h
                    numeric[i, j] = (loss_of(logp + bump) - loss_of(logp - bump)) / (2 * h)
            assert torch.allclose(grad, numeric, atol=1e-7), (loss_type, importance)
            assert grad[mask == 0].abs().max() == 0  # padding gets no gradient


def test_bad_arguments():
    logp, old, ref, mask, advantages = tensors()
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.zeros(3), 3, "global")
    with pytest.raises(ValueError, match="reference"):
        per_token_loss(logp, old, advantages, mask, beta=0.1)
    with pytest.raises(ValueError, match="loss_type"):
        aggregate(logp, mask, "ppo")
    with pytest.raises(ValueError, match="active_tokens"):
        aggregate(logp, mask, "dapo")
