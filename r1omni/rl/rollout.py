"""Rollout: G completions per prompt from the shared-prefix generator, and their rewards.

An example is a training example (`r1omni.train.stream.Example`: `row`, `messages`, `media`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch

from r1omni.models import OmniPolicy
from r1omni.models.shared_prefix import Completion
from r1omni.rewards import RewardFn, accuracy_reward, combine, format_reward
from r1omni.rl.settings import GRPOSettings


@dataclass
class Rollout:
    examples: list  # P prompts (examples)
    completions: list[list[int]]  # P * G token lists, grouped by prompt, end-of-turn token kept
    texts: list[str]  # P * G
    rewards: torch.Tensor  # [P * G] summed, weighted
    accuracy: torch.Tensor  # [P * G]
    formatted: torch.Tensor  # [P * G]
    parts: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [P * G] each reward alone, NaN: None


@torch.no_grad()
def generate_groups(policy: OmniPolicy, examples: list, settings: GRPOSettings,
                    seed: int | list[int]) -> list[list[Completion]]:
    """`settings.num_generations` sampled completions for each example's prompt."""
    prompts = [policy.prompt(e.messages, e.media) for e in examples]
    return policy.generate(prompts, settings.num_generations, temperature=settings.temperature,
                           top_p=settings.top_p, max_new_tokens=settings.max_completion_length, seed=seed)


def reward_columns(example) -> dict:
    """The columns a reward function gets for one prompt, as TRL passes a dataset's columns: the
    row's fields (``cues``, ``meta``, ``speaker`` …, not its label, which is the solution) and the
    `modalities` the prompt showed."""
    columns = {f.name: getattr(example.row, f.name) for f in fields(example.row) if f.name != "label"}
    return {**columns, "modalities": tuple(example.media.present())}


def score_groups(policy: OmniPolicy, examples: list, groups: list[list[Completion]],
                 rewards: dict[str, RewardFn], weights: dict[str, float], accuracy_mode: str = "canonical") -> Rollout:
    """Each named reward of each prompt's completions against its row (TRL-signature functions
    given the row's columns), their weighted sum, and the accuracy and format rewards alone."""
    end = policy.end_of_turn_id
    completions, texts, labels, columns = [], [], [], []
    for example, group in zip(examples, groups):
        for completion in group:
            # A completion that stopped keeps its end-of-turn token: stopping is learned too.
            completions.append(completion.ids + ([end] if completion.stopped else []))
            texts.append(completion.text)
            labels.append(example.row.label)
            columns.append(reward_columns(example))
    by_column = {key: [c[key] for c in columns] for key in (columns[0] if columns else {})}
    parts = {name: fn(texts, solution=labels, **by_column) for name, fn in rewards.items()}
    total = combine(list(parts.values()), [weights[name] for name in parts])
    return Rollout(
        examples, completions, texts,
        rewards=torch.tensor([r if r is not None else 0.0 for r in total], dtype=torch.float32),
        accuracy=torch.tensor(accuracy_reward(texts, labels, mode=accuracy_mode), dtype=torch.float32),
        formatted=torch.tensor(format_reward(texts), dtype=torch.float32),
        parts={name: torch.tensor([math.nan if r is None else r for r in values], dtype=torch.float32)
               for name, values in parts.items()},
    )


def keep_groups(batch: Rollout, keep: torch.Tensor, G: int) -> Rollout:
    """The rollout restricted to the groups (prompts) where `keep` ``[P]`` is true."""
    index = [i for i, k in enumerate(keep.tolist()) if k]
    rows = [i * G + j for i in index for j in range(G)]
    return Rollout([batch.examples[i] for i in index], [batch.completions[r] for r in rows],
                   [batch.texts[r] for r in rows], batch.rewards[rows], batch.accuracy[rows], batch.formatted[rows],
                   {name: values[rows] for name, values in batch.parts.items()})


def concat(a: Rollout, b: Rollout) -> Rollout:
    return Rollout(a.examples + b.examples, a.completions + b.completions, a.texts + b.texts,
                   torch.cat([a.rewards, b.rewards]), torch.cat([a.accuracy, b.accuracy]),
                   torch.cat([a.formatted, b.formatted]),
                   {name: torch.cat([a.parts[name], b.parts[name]]) for name in a.parts})
