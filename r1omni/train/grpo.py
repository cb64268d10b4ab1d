"""One GRPO step with verifiable rewards, as named, timed stages:
read -> generate -> reward -> advantages -> old/ref log-probs -> update.

A step takes `batch_size / num_generations` prompts, samples `num_generations` completions
for each from one prefill, scores them, and updates the policy `num_iterations` times in
micro-batches of whole groups. Each stage's seconds go to metrics.jsonl as ``time_<stage>``.
The objective, settings and rollout scoring are `r1omni.rl`'s; this module runs them on a
training state. `grpo_step` takes its rollout and log-prob functions as arguments, so a variant
(benchmarks/omni_setup.py's published scheme) replaces one stage and keeps the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from r1omni.progress import StageTimer
from r1omni.rewards import reward_functions
from r1omni.rl.grpo import aggregate, group_advantages, per_token_loss, zero_std_groups
from r1omni.rl.rollout import Rollout, concat, generate_groups, keep_groups, score_groups
from r1omni.train.loop import TrainState, autocast, gathered, local_share, update

MAX_RESAMPLES = 4  # dynamic sampling: extra rollout rounds before accepting a short batch


@dataclass
class MicroBatch:
    """Whole groups of a step's local completions, for one forward/backward."""

    index: int  # which micro-batch: its old and reference log-probs
    completions: slice  # rows of the completions (and advantages)
    prompts: slice  # the prompts (groups) those rows belong to


def grpo_step(state: TrainState, rollout=None, logprobs=None) -> dict:
    """One GRPO step. `rollout(state, timer) -> Rollout` and `logprobs(state, model, examples,
    completions, grad) -> (logp, mask)` default to `sample_rollout` and `completion_logprobs`."""
    rollout, logprobs = rollout or sample_rollout, logprobs or completion_logprobs
    g = state.config.grpo
    timer = StageTimer()
    with gathered(state):
        batch = rollout(state, timer)  # stages: read, generate, reward
    state.last_batch_ids = [e.row.id for e in batch.examples]
    with timer("advantages"):
        rewards = gather(state, batch.rewards)  # the global batch, for batch-level scaling
        size = len(batch.rewards)
        advantages = group_advantages(rewards, g.num_generations, g.scale_rewards)[state.rank * size:
                                                                                   (state.rank + 1) * size]
    parts = micro_batches(state, size)
    with timer("old_logprobs"):
        old = fixed_logprobs(state, logprobs, state.policy, batch, parts) if g.num_iterations > 1 else None
    with timer("ref_logprobs"):
        ref = fixed_logprobs(state, logprobs, state.reference, batch, parts) if state.reference is not None else None
    statistics = []
    with timer("update"):
        lengths = gather(state, torch.tensor([len(c) for c in batch.completions], dtype=torch.float32))  # [B]
        active = float(lengths.sum()) / state.processes  # dapo: global tokens / processes
        for _ in range(g.num_iterations):
            metrics, stats = update(state, parts, lambda part: micro_loss(state, logprobs, batch, part, advantages,
                                                                          old, ref, active, len(parts)))
            statistics += stats
    metrics.update(rollout_metrics(state, batch, rewards, lengths, statistics), **timer.metrics())
    return metrics


def sample_rollout(state: TrainState, timer: StageTimer) -> Rollout:
    """This process's prompts and their completions with rewards; with dynamic sampling (DAPO)
    only groups whose rewards differ, sampling more rounds until every process has enough."""
    g = state.config.grpo
    prompts = local_share(state, state.config.train.batch_size // g.num_generations)
    batch = sample(state, timer, prompts, 0)
    if not g.dynamic_sampling:
        return batch
    kept = keep_groups(batch, ~zero_std_groups(batch.rewards, g.num_generations), g.num_generations)
    for round_ in range(1, MAX_RESAMPLES + 1):
        if everywhere(state, len(kept.examples) >= prompts):
            break
        extra = sample(state, timer, prompts, round_)
        kept = concat(kept, keep_groups(extra, ~zero_std_groups(extra.rewards, g.num_generations), g.num_generations))
    if len(kept.examples) < prompts:  # fill up with zero-variance groups rather than stall
        kept = concat(kept, batch)
    return keep_groups(kept, torch.arange(len(kept.examples)) < prompts, g.num_generations)


def sample(state: TrainState, timer: StageTimer, count: int, round_: int) -> Rollout:
    """`count` prompts of this process, `num_generations` completions each, scored."""
    g, train = state.config.grpo, state.config.train
    with timer("read"):
        examples = state.stream.next_examples(count * state.processes)[state.rank :: state.processes]
    # One seed per prompt, from its place in the global batch: the same completions whether one
    # process or several generate them.
    base = (train.seed * 1_000_003 + state.step * 101 + round_) * 4096
    seeds = [base + state.rank + state.processes * i for i in range(len(examples))]
    state.policy.eval()
    with timer("generate"), autocast(state):
        groups = generate_groups(state.policy, examples, g, seeds)
    state.policy.train()
    with timer("reward"):
        rewards = reward_functions(g.reward_weights, g.accuracy_mode)
        return score_groups(state.policy, examples, groups, rewards, g.reward_weights, g.accuracy_mode)


def micro_batches(state: TrainState, size: int) -> list[MicroBatch]:
    """Whole groups of G completions per micro-batch, at most `train.micro_batch_size` rows."""
    G = state.config.grpo.num_generations
    micro = max(G, state.config.train.micro_batch_size // G * G)
    return [MicroBatch(k, slice(i, i + micro), slice(i // G, (i + micro + G - 1) // G))
            for k, i in enumerate(range(0, size, micro))]


def completion_logprobs(state: TrainState, model, examples, completions, grad: bool):
    """Per-token log-probs ``[rows, Lc]`` and their mask of `completions` under `model`."""
    with torch.set_grad_enabled(grad), autocast(state):
        prompts = [model.prompt(e.messages, e.media) for e in examples]
        return model.completion_logprobs(prompts, completions, temperature=state.config.grpo.temperature or 1.0)


def fixed_logprobs(state: TrainState, logprobs, model, batch: Rollout, parts: list[MicroBatch]) -> list[torch.Tensor]:
    """Each micro-batch's per-token log-probs under `model`, no gradient (old policy, reference)."""
    return [logprobs(state, model, batch.examples[p.prompts], batch.completions[p.completions], False)[0]
            for p in parts]


def micro_loss(state: TrainState, logprobs, batch: Rollout, part: MicroBatch, advantages, old, ref, active: float,
               parts: int) -> tuple[torch.Tensor, dict]:
    """A micro-batch's share of the step's loss, and its KL and clipped fractions."""
    g = state.config.grpo
    logp, mask = logprobs(state, state.policy, batch.examples[part.prompts], batch.completions[part.completions], True)
    old_logp = old[part.index] if old is not None else logp.detach()
    per_token, info = per_token_loss(logp, old_logp, advantages[part.completions].to(logp.device), mask,
                                     g.epsilon_low, g.epsilon_high, g.beta,
                                     ref[part.index] if ref is not None else None, g.importance)
    weights = mask.float()
    stats = {"clipped": float((info["clipped"].expand_as(weights) * weights).sum().detach()
                              / weights.sum().clamp(min=1))}
    if "kl" in info:
        stats["kl"] = float((info["kl"].detach() * weights).sum() / weights.sum().clamp(min=1))
    loss = aggregate(per_token, mask, g.loss_type, g.max_completion_length, active)
    return (loss if g.loss_type == "dapo" else loss / parts), stats


def rollout_metrics(state: TrainState, batch: Rollout, rewards: torch.Tensor, lengths: torch.Tensor,
                    statistics: list[dict]) -> dict:
    """The step's rollout figures; `rewards` and `lengths` ``[B]`` of the global batch."""
    G = state.config.grpo.num_generations
    clipped = [s["clipped"] for s in statistics]
    kl = [s["kl"] for s in statistics if "kl" in s]
    metrics = dict(
        reward=float(rewards.mean()), reward_std=float(rewards.std()),
        accuracy=float(gather(state, batch.accuracy).mean()), format=float(gather(state, batch.formatted).mean()),
        completion_length=float(lengths.mean()),
        frac_reward_zero_std=float(zero_std_groups(rewards, G).float().mean()),
        clip_ratio=sum(clipped) / max(1, len(clipped)),
    )
    if kl:
        metrics["kl"] = sum(kl) / len(kl)
    for name, values in batch.parts.items():
        if name in ("accuracy", "format"):
            continue
        values = gather(state, values)
        scored = ~values.isnan()
        # A reward that skipped every sample (no row measured) has no mean; how many it skipped is logged.
        metrics[f"reward_{name}"] = float(values[scored].mean()) if scored.any() else None
        metrics[f"{name}_unscored"] = float((~scored).float().mean())
    return metrics


def grpo_status(metrics: dict) -> str:
    kl = f"  kl {metrics['kl']:.4f}" if "kl" in metrics else ""
    faith = f"  faith {metrics['reward_faithfulness']:.2f}" if metrics.get("reward_faithfulness") is not None else ""
    return (f"reward {metrics['reward']:.2f}  acc {metrics['accuracy']:.2f}  fmt {metrics['format']:.2f}{faith}{kl}  "
            f"len {metrics['completion_length']:.0f}  {metrics['seconds']:.1f}s/step")


# ---------------------------------------------------------------------- processes


def gather(state: TrainState, tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` of every process, concatenated in rank order (itself with one process)."""
    if state.processes == 1:
        return tensor
    parts = [torch.zeros_like(tensor) for _ in range(state.processes)]
    dist.all_gather(parts, tensor)
    return torch.cat(parts)


def everywhere(state: TrainState, condition: bool) -> bool:
    """Whether `condition` holds on every process: all take the same number of rounds, so their
    data streams stay in step."""
    if state.processes == 1:
        return condition
    flag = torch.tensor([int(condition)], device=state.policy.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag)
