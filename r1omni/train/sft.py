"""Supervised fine-tuning on manifest rows, the loss on assistant tokens only.

Targets: ``reasoning`` (``<think>{rationale}</think>\\n<answer>{label}</answer>``, the cold
start), ``label`` (``<answer>{label}</answer>``, the paper's label-SFT baseline) and ``caption``
(perception pre-training: describe what is seen and heard).
"""

from __future__ import annotations

import torch

from r1omni.errors import ConfigError
from r1omni.labels import vocabulary
from r1omni.models.tokenizer import IM_END
from r1omni.train.alignment import (
    alignment_loss,
    label_words,
    level_loss,
    level_words,
    measured_levels,
    media_mean,
    warm_up_projectors,
)
from r1omni.train.loop import Trainer

TARGET_FIELDS = {"reasoning": "rationale", "label": "label", "caption": "caption"}


def target_text(row, target: str) -> str:
    if target == "reasoning":
        return f"<think>{row.rationale}</think>\n<answer>{row.label}</answer>"
    if target == "label":
        return f"<answer>{row.label}</answer>"
    return row.caption


class SFTTrainer(Trainer):
    stage = "sft"

    def check_rows(self, rows) -> None:
        field = TARGET_FIELDS[self.config.sft.target]
        lacking = [r.id for r in rows if not getattr(r, field)]
        if lacking:
            raise ConfigError(f"sft.target={self.config.sft.target} needs '{field}' in every row; "
                              f"{len(lacking)} rows lack it (first: {lacking[:3]})")
        if self.config.sft.label_alignment or self.config.sft.alignment_epochs:
            known = vocabulary(self.config.data.labels)
            outside = sorted({r.label for r in rows} - set(known))
            if outside:
                raise ConfigError(f"sft.label_alignment and alignment_epochs need every label in data.labels="
                                  f"{self.config.data.labels} ({', '.join(known)}); the rows also have "
                                  f"{', '.join(outside)}")
        if self.config.sft.level_alignment and not any(measured_levels(r) for r in rows):
            raise ConfigError("sft.level_alignment needs rows with measured voice levels (meta.acoustics, written by "
                              "r1omni data describe-voice); none of the training rows has them")

    def prepare_models(self) -> None:
        super().prepare_models()
        sft = self.config.sft
        if self.sharding is not None and (sft.label_alignment or sft.alignment_epochs or sft.level_alignment):
            raise ConfigError("sft.label_alignment, level_alignment and alignment_epochs read the whole embedding "
                              "matrix; they are not available with fsdp (use ddp)")

    def run(self):
        if self.config.sft.alignment_epochs and self.step == 0:
            self.warm_up()
        return super().run()

    def warm_up(self) -> None:
        """The projectors alone on the alignment loss (r1omni.train.alignment), every process on
        every clip alike so that their projectors stay equal."""
        readable = list(self.policy.readable_clips(self.rows, self.config.data.modalities))
        clips, labels = [media for _, media in readable], [row.label for row, _ in readable]
        train, sft = self.config.train, self.config.sft
        warm_up_projectors(self.policy, clips, labels, self.config.data.labels, sft.alignment_epochs,
                           train.lr * train.encoder_lr_scale, train.batch_size, train.seed,
                           say=print if self.rank == 0 else lambda text: None,
                           levels=[measured_levels(row) for row, _ in readable], level_weight=sft.level_alignment)

    def max_new_tokens(self) -> int:
        return min(self.config.sft.max_length, self.config.grpo.max_completion_length)

    def target_ids(self, row) -> list[int]:
        """The assistant turn's tokens, closed by the end-of-turn token the model must learn."""
        ids = self.policy.tokenizer(target_text(row, self.config.sft.target), add_special_tokens=False)["input_ids"]
        end = self.policy.tokenizer.convert_tokens_to_ids(IM_END)
        return ids[: self.config.sft.max_length - 1] + [end]

    def train_step(self, step: int) -> dict:
        train = self.config.train
        examples = self.stream.next_examples(train.batch_size)
        mine = examples[self.rank :: self.processes]
        self.last_batch_ids = [e.row.id for e in mine]
        every_target = [self.target_ids(e.row) for e in examples]
        targets = every_target[self.rank :: self.processes]
        # Token mean over the whole step (all processes), whatever the micro-batching.
        step_tokens = sum(len(t) for t in every_target)
        size = train.micro_batch_size

        weight, level_weight = self.config.sft.label_alignment, self.config.sft.level_alignment
        alignments, level_alignments = [], []

        def micro_loss(start: int):
            def compute():
                batch = mine[start : start + size]
                prompts = [self.policy.prompt(e.messages, e.media) for e in batch]
                logprobs, mask = self.policy.completion_logprobs(prompts, targets[start : start + size])
                loss = -(logprobs * mask).sum() * self.processes / step_tokens
                share = len(batch) * self.processes / len(examples)  # of the step's mean
                media = torch.stack([media_mean(p) for p in prompts]) if weight or level_weight else None  # [B, H]
                if weight:
                    words = label_words(self.policy, self.config.data.labels)
                    alignment = alignment_loss(media, [e.row.label for e in batch], words)
                    alignments.append(alignment.detach().item())
                    loss = loss + weight * alignment * share
                if level_weight:
                    levels = level_loss(media, [measured_levels(e.row) for e in batch], level_words(self.policy))
                    level_alignments.append(levels.detach().item())
                    loss = loss + level_weight * levels * share
                return loss
            return compute

        metrics = self.update(micro_loss(i) for i in range(0, len(mine), size))
        metrics["tokens"] = step_tokens
        if alignments:
            metrics["label_alignment"] = sum(alignments) / len(alignments)
        if level_alignments:
            metrics["level_alignment"] = sum(level_alignments) / len(level_alignments)
        return metrics


def run_sft(config, resume=None):
    return SFTTrainer(config, resume).run()
