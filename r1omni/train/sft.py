"""Supervised fine-tuning on manifest rows, the loss on assistant tokens only.

Targets: ``reasoning`` (``<think>{rationale}</think>\\n<answer>{label}</answer>``, the cold
start), ``label`` (``<answer>{label}</answer>``, the paper's label-SFT baseline) and ``caption``
(perception pre-training: describe what is seen and heard).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from r1omni.models import OmniPolicy
from r1omni.train.alignment import (
    alignment_loss,
    label_words,
    level_loss,
    level_words,
    measured_levels,
    media_mean,
    warm_up_projectors,
)
from r1omni.train.config import SFTSettings
from r1omni.train.loop import TrainState, update
from r1omni.train.stream import Example


def target_text(row, target: str) -> str:
    if target == "reasoning":
        return f"<think>{row.rationale}</think>\n<answer>{row.label}</answer>"
    if target == "label":
        return f"<answer>{row.label}</answer>"
    return row.caption


def target_ids(policy: OmniPolicy, row, settings: SFTSettings) -> list[int]:
    """The assistant turn's tokens, closed by the end-of-turn token the model must learn."""
    ids = policy.tokenizer(target_text(row, settings.target), add_special_tokens=False)["input_ids"]
    return ids[: settings.max_length - 1] + [policy.end_of_turn_id]


def balanced_class_weights(labels: list[str]) -> dict[str, float]:
    """Each label's weight n / (classes x its count), scikit-learn's class_weight="balanced": every
    class then weighs as much in the loss, and the mean weight over the rows is 1."""
    counts = Counter(labels)
    return {label: len(labels) / (len(counts) * count) for label, count in counts.items()}


def class_weights(state: TrainState) -> dict[str, float] | None:
    """The training rows' balanced class weights when `sft.class_balance` asks for them."""
    return balanced_class_weights([row.label for row in state.rows]) if state.config.sft.class_balance else None


def warm_up(state: TrainState) -> None:
    """The projectors alone on the alignment loss (r1omni.train.alignment), before the first
    step; every process on every clip alike, so that their projectors stay equal."""
    config = state.config
    readable = list(state.policy.readable_clips(state.rows, config.data.modalities, config.data.standardize_by))
    clips, labels = [media for _, media in readable], [row.label for row, _ in readable]
    train, sft = config.train, config.sft
    warm_up_projectors(state.policy, clips, labels, config.data.labels, sft.alignment_epochs,
                       sft.alignment_lr or train.lr * train.encoder_lr_scale, train.batch_size, train.seed,
                       say=print if state.rank == 0 else lambda text: None,
                       levels=[measured_levels(row) for row, _ in readable], level_weight=sft.level_alignment,
                       class_weights=class_weights(state))


@dataclass
class MicroBatch:
    """One forward/backward's share of an SFT step."""

    examples: list[Example]
    targets: list[list[int]]  # the assistant tokens of each example
    share: float  # of the step's examples (over all processes): weights the alignment losses


def sft_step(state: TrainState) -> dict:
    """One SFT step: read the global batch, take this process's share, then one optimizer step
    over its micro-batches; the loss is the token mean over the whole step (all processes)."""
    train = state.config.train
    examples = state.stream.next_examples(train.batch_size)
    mine = examples[state.rank :: state.processes]
    state.last_batch_ids = [e.row.id for e in mine]
    every_target = [target_ids(state.policy, e.row, state.config.sft) for e in examples]
    targets = every_target[state.rank :: state.processes]
    step_tokens = sum(len(t) for t in every_target)
    size = train.micro_batch_size
    parts = [MicroBatch(mine[i : i + size], targets[i : i + size], len(mine[i : i + size]) * state.processes
                        / len(examples)) for i in range(0, len(mine), size)]
    metrics, statistics = update(state, parts, lambda part: micro_loss(state, part, step_tokens))
    metrics["tokens"] = step_tokens
    for name in ("label_alignment", "level_alignment"):
        values = [stats[name] for stats in statistics if name in stats]
        if values:
            metrics[name] = sum(values) / len(values)
    return metrics


def micro_loss(state: TrainState, part: MicroBatch, step_tokens: int) -> tuple[torch.Tensor, dict]:
    """A micro-batch's share of the step's loss (summed token log-loss, each example's tokens
    weighted by its label's class weight under `sft.class_balance`, / the step's tokens), plus the
    alignment losses at their weights; and those alignment losses alone."""
    policy, sft, stats = state.policy, state.config.sft, {}
    prompts = [policy.prompt(e.messages, e.media) for e in part.examples]
    logprobs, mask = policy.completion_logprobs(prompts, part.targets)  # [B, Lc]
    weights = class_weights(state)
    per_example = (logprobs * mask).sum(-1)  # [B]
    if weights is not None:
        per_example = per_example * torch.tensor([weights[e.row.label] for e in part.examples],
                                                 device=per_example.device)
    loss = -per_example.sum() * state.processes / step_tokens
    if sft.label_alignment or sft.level_alignment:
        media = torch.stack([media_mean(p) for p in prompts])  # [B, H]
    if sft.label_alignment:
        words = label_words(policy, state.config.data.labels)
        alignment = alignment_loss(media, [e.row.label for e in part.examples], words, weights)
        stats["label_alignment"] = alignment.detach().item()
        loss = loss + sft.label_alignment * alignment * part.share
    if sft.level_alignment:
        levels = level_loss(media, [measured_levels(e.row) for e in part.examples], level_words(policy))
        stats["level_alignment"] = levels.detach().item()
        loss = loss + sft.level_alignment * levels * part.share
    return loss, stats


def sft_status(metrics: dict) -> str:
    return f"loss {metrics.get('loss', float('nan')):.3f}  {metrics['seconds']:.1f}s/step"
