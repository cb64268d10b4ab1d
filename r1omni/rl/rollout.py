"""Rollout: G completions per prompt from the shared-prefix generator, and their rewards."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from r1omni.models import OmniPolicy
from r1omni.models.shared_prefix import Completion
from r1omni.models.tokenizer import IM_END
from r1omni.rewards import RewardFn, accuracy_reward, format_reward
from r1omni.train.config import GRPOSettings
from r1omni.train.examples import Example


@dataclass
class Rollout:
    examples: list[Example]  # P prompts
    completions: list[list[int]]  # P * G token lists, grouped by prompt, end-of-turn token kept
    texts: list[str]  # P * G
    rewards: torch.Tensor  # [P * G] summed, weighted
    accuracy: torch.Tensor  # [P * G]
    formatted: torch.Tensor  # [P * G]


@torch.no_grad()
def generate_groups(policy: OmniPolicy, examples: list[Example], settings: GRPOSettings,
                    seed: int | list[int]) -> list[list[Completion]]:
    """`settings.num_generations` sampled completions for each example's prompt."""
    prompts = [policy.prompt(e.messages, e.media) for e in examples]
    return policy.generate(prompts, settings.num_generations, temperature=settings.temperature,
                           top_p=settings.top_p, max_new_tokens=settings.max_completion_length, seed=seed)


def score_groups(policy: OmniPolicy, examples: list[Example], groups: list[list[Completion]], reward: RewardFn,
                 accuracy_mode: str = "canonical") -> Rollout:
    """Rewards of each prompt's completions against its row's label (`reward`: a TRL-signature
    function, e.g. `r1omni.rewards.reward_function`), and the accuracy and format rewards alone."""
    end = policy.tokenizer.convert_tokens_to_ids(IM_END)
    completions, texts, labels = [], [], []
    for example, group in zip(examples, groups):
        for completion in group:
            # A completion that stopped keeps its end-of-turn token: stopping is learned too.
            completions.append(completion.ids + ([end] if completion.stopped else []))
            texts.append(completion.text)
            labels.append(example.row.label)
    rewards = reward(texts, solution=labels)
    return Rollout(
        examples, completions, texts,
        rewards=torch.tensor([r if r is not None else 0.0 for r in rewards], dtype=torch.float32),
        accuracy=torch.tensor(accuracy_reward(texts, labels, mode=accuracy_mode), dtype=torch.float32),
        formatted=torch.tensor(format_reward(texts), dtype=torch.float32),
    )


def keep_groups(batch: Rollout, keep: torch.Tensor, G: int) -> Rollout:
    """The rollout restricted to the groups (prompts) where `keep` ``[P]`` is true."""
    index = [i for i, k in enumerate(keep.tolist()) if k]
    rows = [i * G + j for i in index for j in range(G)]
    return Rollout([batch.examples[i] for i in index], [batch.completions[r] for r in rows],
                   [batch.texts[r] for r in rows], batch.rewards[rows], batch.accuracy[rows], batch.formatted[rows])


def concat(a: Rollout, b: Rollout) -> Rollout:
    return Rollout(a.examples + b.examples, a.completions + b.completions, a.texts + b.texts,
                   torch.cat([a.rewards, b.rewards]), torch.cat([a.accuracy, b.accuracy]),
                   torch.cat([a.formatted, b.formatted]))
