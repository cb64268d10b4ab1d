"""The GRPO objective as pure tensor functions: advantages, per-token losses, aggregation.

Formulas follow TRL's GRPOTrainer (tests compare them numerically):
per token ``w = exp(logp - old_logp)`` and ``l = -min(w A, clip(w, 1 - eps_low, 1 + eps_high) A)``,
plus ``beta (exp(ref - logp) - (ref - logp) - 1)`` (the k3 KL estimator) when beta > 0. GSPO
replaces the token ratio by one per sequence, ``exp(mean_t(logp - old_logp))``.
"""

from __future__ import annotations

import torch

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")
IMPORTANCE_LEVELS = ("token", "sequence")


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4
                     ) -> torch.Tensor:
    """``(R - mean_group) / (std + eps)`` for rewards ``[B]`` ordered in groups of `group_size`.

    `scale`: ``group`` divides by the group's std, ``batch`` by the std of all rewards,
    ``none`` only centres (Dr. GRPO). Stds are Bessel-corrected, as TRL computes them.
    """
    if scale not in SCALE_REWARDS:
        raise ValueError(f"scale must be one of {SCALE_REWARDS}, got {scale!r}")
    grouped = rewards.view(-1, group_size)  # [P, G]
    centred = (grouped - grouped.mean(-1, keepdim=True)).reshape(-1)  # [B]
    if scale == "none":
        return centred
    if scale == "group":
        std = grouped.std(-1, keepdim=True).expand_as(grouped).reshape(-1)
    else:
        std = rewards.std().expand_as(rewards)
    return centred / (std + eps)


def zero_std_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Which groups ``[P]`` have all-equal rewards (no learning signal)."""
    return rewards.view(-1, group_size).std(-1) == 0


def per_token_loss(
    logp: torch.Tensor,  # [B, T] log-probs of the sampled tokens under the current policy
    old_logp: torch.Tensor,  # [B, T] under the policy that generated them
    advantages: torch.Tensor,  # [B]
    mask: torch.Tensor,  # [B, T] 1 on completion tokens
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,  # [B, T], needed when beta > 0
    importance: str = "token",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate (+ k3 KL) per token ``[B, T]``, and per-token diagnostics."""
    if importance not in IMPORTANCE_LEVELS:
        raise ValueError(f"importance must be one of {IMPORTANCE_LEVELS}, got {importance!r}")
    epsilon_high = epsilon_low if epsilon_high is None else epsilon_high
    log_ratio = logp - old_logp
    if importance == "sequence":  # GSPO: one ratio per sequence, mean over its tokens
        log_ratio = (log_ratio * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1)
    ratio = torch.exp(log_ratio)  # [B, T] or [B, 1]
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    advantage = advantages[:, None]
    loss = -torch.min(ratio * advantage, clipped * advantage)
    info = {"clipped": ((ratio < 1 - epsilon_low) & (advantage < 0)) | ((ratio > 1 + epsilon_high) & (advantage > 0))}
    if beta > 0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs the reference log-probs")
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1  # k3 estimator, >= 0
        loss = loss + beta * kl
        info["kl"] = kl
    return loss.expand_as(logp), info


def aggregate(
    per_token: torch.Tensor,  # [B, T]
    mask: torch.Tensor,  # [B, T]
    loss_type: str = "grpo",
    max_completion_length: int | None = None,
    active_tokens: float | None = None,
) -> torch.Tensor:
    """Reduce per-token losses of one micro-batch to a scalar.

    ``grpo``: mean over sequences of each sequence's token mean. ``bnpo``: token mean over the
    micro-batch. ``dr_grpo``: token sum / (B × max_completion_length). ``dapo``: token sum /
    `active_tokens`, the completion tokens of the whole optimizer step across processes divided
    by the number of processes (so gradients averaged by DDP weigh every token alike).
    """
    mask = mask.to(per_token.dtype)
    total = (per_token * mask).sum()
    if loss_type == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()
    if loss_type == "bnpo":
        return total / mask.sum().clamp(min=1)
    if loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("dr_grpo needs max_completion_length")
        return total / (per_token.shape[0] * max_completion_length)
    if loss_type == "dapo":
        if active_tokens is None:
            raise ValueError("dapo needs active_tokens (global completion tokens / processes)")
        return total / max(active_tokens, 1.0)
    raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
