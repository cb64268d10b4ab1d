"""GRPO with verifiable rewards, one step as named, timed stages:
read -> generate -> reward -> advantages -> old/ref log-probs -> update.

One step takes `batch_size / num_generations` prompts, samples `num_generations` completions
for each from one prefill, scores them, and updates the policy `num_iterations` times in
micro-batches of whole groups. Each stage's seconds go to metrics.jsonl as ``time_<stage>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from r1omni.rewards import reward_functions
from r1omni.rl.grpo import aggregate, group_advantages, per_token_loss, zero_std_groups
from r1omni.rl.rollout import Rollout, concat, generate_groups, keep_groups, score_groups
from r1omni.train.dist import ShardedPolicy
from r1omni.train.loop import StageTimer, Trainer

MAX_RESAMPLES = 4  # dynamic sampling: extra rollout rounds before accepting a short batch


@dataclass
class MicroBatches:
    """How a step's local completions split into micro-batches of whole groups."""

    completions: list[slice]  # rows of the completions (and advantages) of each micro-batch
    prompts: list[slice]  # the prompts (groups) those rows belong to


class GRPOTrainer(Trainer):
    stage = "grpo"

    def prepare_models(self) -> None:
        self.reference = self._reference() if self.config.grpo.beta > 0 else None
        super().prepare_models()
        if self.sharding is not None and self.reference is not None:
            ShardedPolicy(self.reference)
        self.rewards = reward_functions(self.config.grpo.reward_weights, self.config.grpo.accuracy_mode)

    def sequences_per_example(self) -> int:
        return self.config.grpo.num_generations

    def updates_per_step(self) -> int:
        return self.config.grpo.num_iterations

    def _reference(self):
        """A frozen copy of the run's starting policy for the KL term (on resume, loaded again
        from the start, not from the checkpoint); frozen encoders are shared, not copied."""
        if self.resumed_from is None:
            return self.policy.reference_copy()
        torch.manual_seed(self.config.train.seed)  # a fresh preset or LoRA start is rebuilt the same
        reference = self._load_policy(None)
        reference.share_frozen_encoders(self.policy)
        return reference.eval().requires_grad_(False)

    # ------------------------------------------------------------------ the step

    def train_step(self, step: int) -> dict:
        g = self.config.grpo
        timer = StageTimer()
        with self.gathered():
            batch = self.rollout(step, timer)  # stages: generate, reward
        self.last_batch_ids = [e.row.id for e in batch.examples]
        with timer("advantages"):
            rewards = self._gather(batch.rewards)  # the global batch, for batch-level scaling
            advantages = self.local_advantages(rewards, len(batch.rewards))
        split = self.micro_batches(len(batch.rewards))
        with timer("old_logprobs"):
            old = self.logprobs(self.policy, batch, split) if g.num_iterations > 1 else None
        with timer("ref_logprobs"):
            ref = self.logprobs(self.reference, batch, split) if self.reference is not None else None
        stats = {"kl": [], "clipped": []}
        with timer("update"):
            losses = self.micro_losses(batch, split, advantages, old, ref, stats)
            for _ in range(g.num_iterations):
                metrics = self.update(losses)
        metrics.update(self.rollout_metrics(batch, rewards, stats), **timer.metrics())
        return metrics

    def rollout(self, step: int, timer: StageTimer) -> Rollout:
        """This process's prompts and their completions with rewards; with dynamic sampling
        (DAPO) only groups whose rewards differ, sampling more rounds until every process has
        enough of them."""
        g, train = self.config.grpo, self.config.train
        prompts = self.local_share(train.batch_size // g.num_generations)

        def sample(count: int, round_: int) -> Rollout:
            with timer("read"):
                examples = self.stream.next_examples(count * self.processes)[self.rank :: self.processes]
            # One seed per prompt, from its place in the global batch: the same completions
            # whether one process or several generate them.
            base = (train.seed * 1_000_003 + step * 101 + round_) * 4096
            seeds = [base + self.rank + self.processes * i for i in range(len(examples))]
            self.policy.eval()
            with timer("generate"), self.autocast():
                groups = generate_groups(self.policy, examples, g, seeds)
            self.policy.train()
            with timer("reward"):
                return score_groups(self.policy, examples, groups, self.rewards, g.reward_weights, g.accuracy_mode)

        batch = sample(prompts, 0)
        if not g.dynamic_sampling:
            return batch
        kept = keep_groups(batch, ~zero_std_groups(batch.rewards, g.num_generations), g.num_generations)
        for round_ in range(1, MAX_RESAMPLES + 1):
            if self._everywhere(len(kept.examples) >= prompts):
                break
            extra = sample(prompts, round_)
            kept = concat(kept, keep_groups(extra, ~zero_std_groups(extra.rewards, g.num_generations),
                                            g.num_generations))
        if len(kept.examples) < prompts:  # fill up with zero-variance groups rather than stall
            kept = concat(kept, batch)
        return keep_groups(kept, torch.arange(len(kept.examples)) < prompts, g.num_generations)

    def local_advantages(self, rewards: torch.Tensor, size: int) -> torch.Tensor:
        """Group advantages over the global batch `rewards` ``[B]``; this process's `size` of them."""
        g = self.config.grpo
        advantages = group_advantages(rewards, g.num_generations, g.scale_rewards)
        return advantages[self.rank * size : (self.rank + 1) * size]

    def micro_batches(self, size: int) -> MicroBatches:
        """Whole groups of G completions per micro-batch, at most `train.micro_batch_size` rows."""
        G = self.config.grpo.num_generations
        micro = max(G, self.config.train.micro_batch_size // G * G)
        chunks = [slice(i, i + micro) for i in range(0, size, micro)]
        return MicroBatches(chunks, [slice(c.start // G, (c.stop + G - 1) // G) for c in chunks])

    def logprobs(self, model, batch: Rollout, split: MicroBatches) -> list[torch.Tensor]:
        """Per-token log-probs ``[rows, Lc]`` of each micro-batch's completions under `model`, no gradient."""
        return [self._logprobs(model, batch.examples[p], batch.completions[c], grad=False)[0]
                for c, p in zip(split.completions, split.prompts)]

    def _logprobs(self, model, examples, completions, grad: bool):
        with torch.set_grad_enabled(grad), self.autocast():
            prompts = [model.prompt(e.messages, e.media) for e in examples]
            return model.completion_logprobs(prompts, completions, temperature=self.config.grpo.temperature or 1.0)

    def micro_losses(self, batch: Rollout, split: MicroBatches, advantages, old, ref, stats: dict) -> list:
        """One loss callable per micro-batch (for `update`), scaled so their sum is the step's loss."""
        g = self.config.grpo
        lengths = torch.tensor([len(c) for c in batch.completions], dtype=torch.float32)
        active = float(self._gather(lengths).sum()) / self.processes  # dapo: global tokens / processes

        def micro_loss(k: int):
            rows, prompts = split.completions[k], split.prompts[k]

            def compute():
                logp, mask = self._logprobs(self.policy, batch.examples[prompts], batch.completions[rows], True)
                old_logp = old[k] if old is not None else logp.detach()
                per_token, info = per_token_loss(
                    logp, old_logp, advantages[rows].to(logp.device), mask, g.epsilon_low, g.epsilon_high,
                    g.beta, ref[k] if ref is not None else None, g.importance)
                weights = mask.float()
                if "kl" in info:
                    stats["kl"].append(float((info["kl"].detach() * weights).sum() / weights.sum().clamp(min=1)))
                stats["clipped"].append(float((info["clipped"].expand_as(weights) * weights).sum().detach()
                                              / weights.sum().clamp(min=1)))
                loss = aggregate(per_token, mask, g.loss_type, g.max_completion_length, active)
                return loss if g.loss_type == "dapo" else loss / len(split.completions)
            return compute

        return [micro_loss(k) for k in range(len(split.completions))]

    def rollout_metrics(self, batch: Rollout, rewards: torch.Tensor, stats: dict) -> dict:
        G = self.config.grpo.num_generations
        lengths = torch.tensor([len(c) for c in batch.completions], dtype=torch.float32)
        metrics = dict(
            reward=float(rewards.mean()), reward_std=float(rewards.std()),
            accuracy=float(self._gather(batch.accuracy).mean()), format=float(self._gather(batch.formatted).mean()),
            completion_length=float(self._gather(lengths).mean()),
            frac_reward_zero_std=float(zero_std_groups(rewards, G).float().mean()),
            clip_ratio=sum(stats["clipped"]) / max(1, len(stats["clipped"])),
        )
        if stats["kl"]:
            metrics["kl"] = sum(stats["kl"]) / len(stats["kl"])
        for name, values in batch.parts.items():
            if name in ("accuracy", "format"):
                continue
            values = self._gather(values)
            scored = ~values.isnan()
            # A reward that skipped every sample (no row measured) has no mean; how many it skipped is logged.
            metrics[f"reward_{name}"] = float(values[scored].mean()) if scored.any() else None
            metrics[f"{name}_unscored"] = float((~scored).float().mean())
        return metrics

    # ------------------------------------------------------------------ processes

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.processes == 1:
            return tensor
        parts = [torch.zeros_like(tensor) for _ in range(self.processes)]
        dist.all_gather(parts, tensor)
        return torch.cat(parts)

    def _everywhere(self, condition: bool) -> bool:
        """Whether `condition` holds on every process: all take the same number of rounds, so
        their data streams stay in step."""
        if self.processes == 1:
            return condition
        flag = torch.tensor([int(condition)], device=self.policy.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag)

    def status(self, metrics: dict) -> str:
        kl = f"  kl {metrics['kl']:.4f}" if "kl" in metrics else ""
        faith = f"  faith {metrics['reward_faithfulness']:.2f}" if metrics.get("reward_faithfulness") is not None else ""
        return (f"reward {metrics['reward']:.2f}  acc {metrics['accuracy']:.2f}  fmt {metrics['format']:.2f}{faith}{kl}  "
                f"len {metrics['completion_length']:.0f}  {metrics['seconds']:.1f}s/step")


def run_grpo(config, resume=None):
    return GRPOTrainer(config, resume).run()
