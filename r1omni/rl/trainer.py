"""GRPO with verifiable rewards: rollout -> rewards -> old/ref log-probs -> advantages -> update.

One step takes `batch_size / num_generations` prompts, samples `num_generations` completions
for each from one prefill, scores them, and updates the policy `num_iterations` times in
micro-batches of whole groups.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist

from r1omni.rl.grpo import aggregate, group_advantages, per_token_loss, zero_std_groups
from r1omni.rl.rollout import Rollout, rollout
from r1omni.training.base import Trainer
from r1omni.training.sharding import ShardedPolicy

MAX_RESAMPLES = 4  # dynamic sampling: extra rollout rounds before accepting a short batch


class GRPOTrainer(Trainer):
    stage = "grpo"

    def prepare_models(self) -> None:
        self.reference = self._reference() if self.config.grpo.beta > 0 else None
        super().prepare_models()
        if self.sharding is not None and self.reference is not None:
            ShardedPolicy(self.reference)

    def sequences_per_example(self) -> int:
        return self.config.grpo.num_generations

    def updates_per_step(self) -> int:
        return self.config.grpo.num_iterations

    def _reference(self):
        """A frozen copy of the run's starting policy for the KL term (on resume, loaded again
        from the start, not from the checkpoint); frozen towers are shared, not copied."""
        shared = {m: t for m, t in getattr(self.policy, "towers", {}).items() if m in self.policy.config.frozen}
        if self.resumed_from is not None:
            torch.manual_seed(self.config.train.seed)  # a fresh nano or LoRA start is rebuilt the same
            reference = self._load_policy(None)
        else:
            for modality in shared:
                del self.policy.towers[modality]
            try:
                reference = copy.deepcopy(self.policy)
            finally:
                for modality, tower in shared.items():
                    self.policy.towers[modality] = tower
        for modality, tower in shared.items():
            reference.towers[modality] = tower
        reference.feature_cache = self.policy.feature_cache
        return reference.eval().requires_grad_(False)

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world == 1:
            return tensor
        parts = [torch.zeros_like(tensor) for _ in range(self.world)]
        dist.all_gather(parts, tensor)
        return torch.cat(parts)

    def _rollout(self, step: int) -> Rollout:
        g, train = self.config.grpo, self.config.train
        prompts = self.local_share(train.batch_size // g.num_generations)

        def sample(count: int, round_: int) -> Rollout:
            examples = self.stream.next_examples(count * self.world)[self.rank :: self.world]
            # One seed per prompt, from its place in the global batch: the same completions
            # whether one process or several generate them.
            base = (train.seed * 1_000_003 + step * 101 + round_) * 4096
            seed = [base + self.rank + self.world * i for i in range(len(examples))]
            self.policy.eval()
            out = rollout(self.policy, examples, g.num_generations, g.temperature, g.top_p, g.max_completion_length,
                          seed, g.reward_weights, g.accuracy_mode)
            self.policy.train()
            return out

        with self.gathered():
            return self._fill(sample, prompts)

    def _fill(self, sample, prompts: int) -> Rollout:
        """The first rollout, or with dynamic sampling (DAPO) only the groups whose rewards
        differ, sampling more rounds until every process has `prompts` of them."""
        g = self.config.grpo
        batch = sample(prompts, 0)
        if not g.dynamic_sampling:
            return batch
        kept = _keep_groups(batch, ~zero_std_groups(batch.rewards, g.num_generations), g.num_generations)
        for round_ in range(1, MAX_RESAMPLES + 1):
            if self._everywhere(len(kept.examples) >= prompts):
                break
            extra = sample(prompts, round_)
            extra = _keep_groups(extra, ~zero_std_groups(extra.rewards, g.num_generations), g.num_generations)
            kept = _concat(kept, extra)
        if len(kept.examples) < prompts:  # fill up with zero-variance groups rather than stall
            kept = _concat(kept, batch)
        return _keep_groups(kept, torch.arange(len(kept.examples)) < prompts, g.num_generations)

    def _everywhere(self, condition: bool) -> bool:
        """Whether `condition` holds on every process: all take the same number of rounds, so
        their data streams stay in step."""
        if self.world == 1:
            return condition
        flag = torch.tensor([int(condition)], device=self.policy.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag)

    def _logprobs(self, model, examples, completions, grad: bool):
        with torch.set_grad_enabled(grad), self.autocast():
            prompts = [model.prompt(e.messages, e.media) for e in examples]
            return model.completion_logprobs(prompts, completions, temperature=self.config.grpo.temperature or 1.0)

    def train_step(self, step: int) -> dict:
        g, train = self.config.grpo, self.config.train
        batch = self._rollout(step)
        self.last_batch_ids = [e.row.id for e in batch.examples]
        G = g.num_generations
        rewards = self._gather(batch.rewards)  # the global batch, for batch-level scaling
        advantages = group_advantages(rewards, G, g.scale_rewards)
        size = len(batch.rewards)
        advantages = advantages[self.rank * size : (self.rank + 1) * size]
        micro = max(G, train.micro_batch_size // self.world // G * G)  # whole groups per micro-batch
        chunks = [slice(i, i + micro) for i in range(0, size, micro)]
        groups = [slice(c.start // G, (c.stop + G - 1) // G) for c in chunks]
        lengths = torch.tensor([len(c) for c in batch.completions], dtype=torch.float32)
        active = float(self._gather(lengths).sum()) / self.world  # dapo: global tokens / processes

        def old_and_ref(model):
            return [self._logprobs(model, batch.examples[p], batch.completions[c], grad=False)[0]
                    for c, p in zip(chunks, groups)]

        old = old_and_ref(self.policy) if g.num_iterations > 1 else None
        ref = old_and_ref(self.reference) if self.reference is not None else None
        stats = {"kl": [], "clipped": []}

        def micro_loss(k: int):
            def compute():
                logp, mask = self._logprobs(self.policy, batch.examples[groups[k]], batch.completions[chunks[k]], True)
                old_logp = old[k] if old is not None else logp.detach()
                per_token, info = per_token_loss(
                    logp, old_logp, advantages[chunks[k]].to(logp.device), mask, g.epsilon_low, g.epsilon_high,
                    g.beta, ref[k] if ref is not None else None, g.importance)
                weights = mask.float()
                if "kl" in info:
                    stats["kl"].append(float((info["kl"].detach() * weights).sum() / weights.sum().clamp(min=1)))
                stats["clipped"].append(float((info["clipped"].expand_as(weights) * weights).sum().detach()
                                              / weights.sum().clamp(min=1)))
                loss = aggregate(per_token, mask, g.loss_type, g.max_completion_length, active)
                return loss if g.loss_type == "dapo" else loss / len(chunks)
            return compute

        for _ in range(g.num_iterations):
            metrics = self.update(micro_loss(k) for k in range(len(chunks)))
        accuracy, formatted = self._gather(batch.accuracy), self._gather(batch.formatted)
        metrics.update(
            reward=float(rewards.mean()), reward_std=float(rewards.std()), accuracy=float(accuracy.mean()),
            format=float(formatted.mean()), completion_length=float(self._gather(lengths).mean()),
            frac_reward_zero_std=float(zero_std_groups(rewards, G).float().mean()),
            clip_ratio=sum(stats["clipped"]) / max(1, len(stats["clipped"])),
        )
        if stats["kl"]:
            metrics["kl"] = sum(stats["kl"]) / len(stats["kl"])
        return metrics

    def status(self, metrics: dict) -> str:
        kl = f"  kl {metrics['kl']:.4f}" if "kl" in metrics else ""
        return (f"reward {metrics['reward']:.2f}  acc {metrics['accuracy']:.2f}  fmt {metrics['format']:.2f}{kl}  "
                f"len {metrics['completion_length']:.0f}  {metrics['seconds']:.1f}s/step")


def _keep_groups(batch: Rollout, keep: torch.Tensor, G: int) -> Rollout:
    """The rollout restricted to the groups (prompts) where `keep` ``[P]`` is true."""
    index = [i for i, k in enumerate(keep.tolist()) if k]
    rows = [i * G + j for i in index for j in range(G)]
    return Rollout([batch.examples[i] for i in index], [batch.completions[r] for r in rows],
                   [batch.texts[r] for r in rows], batch.rewards[rows], batch.accuracy[rows], batch.formatted[rows])


def _concat(a: Rollout, b: Rollout) -> Rollout:
    return Rollout(a.examples + b.examples, a.completions + b.completions, a.texts + b.texts,
                   torch.cat([a.rewards, b.rewards]), torch.cat([a.accuracy, b.accuracy]),
                   torch.cat([a.formatted, b.formatted]))


def run_grpo(config, resume=None):
    return GRPOTrainer(config, resume).run()
