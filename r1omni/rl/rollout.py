"""Rollout: G completions per prompt from the shared-prefix generator, and their rewards."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from r1omni.models.shared_prefix import Completion
from r1omni.models.tokenizer import IM_END
from r1omni.rewards import accuracy_reward, format_reward, weighted_sum
from r1omni.training.data import Example


@dataclass
class Rollout:
    examples: list[Example]  # P prompts
    completions: list[list[int]]  # P * G token lists, grouped by prompt, end-of-turn token kept
    texts: list[str]  # P * G
    rewards: torch.Tensor  # [P * G] summed, weighted
    accuracy: torch.Tensor  # [P * G]
    formatted: torch.Tensor  # [P * G]


def reward_function(weights: dict[str, float], accuracy_mode: str):
    """The weighted sum of the named rewards: ``accuracy``, ``format``, or ``module:function``
    for any function with TRL's reward signature."""
    builtin = {"accuracy": lambda c, solution, **k: accuracy_reward(c, solution, mode=accuracy_mode),
               "format": lambda c, **k: format_reward(c)}
    return weighted_sum([builtin.get(name) or import_reward(name) for name in weights], list(weights.values()))


def import_reward(name: str):
    """``package.module:function`` -> the function."""
    import importlib

    module, _, attribute = name.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError) as err:
        from r1omni.config import ConfigError

        raise ConfigError(f"reward {name!r}: cannot import ({err}); use accuracy, format or module:function") from None


@torch.no_grad()
def rollout(policy, examples: list[Example], num_generations: int, temperature: float, top_p: float,
            max_new_tokens: int, seed: int | list[int], weights: dict[str, float],
            accuracy_mode: str = "canonical") -> Rollout:
    prompts = [policy.prompt(e.messages, e.media) for e in examples]
    groups = policy.generate(prompts, num_generations, temperature=temperature, top_p=top_p,
                             max_new_tokens=max_new_tokens, seed=seed)
    return score_groups(policy, examples, groups, weights, accuracy_mode)


def score_groups(policy, examples: list[Example], groups: list[list[Completion]], weights: dict[str, float],
                 accuracy_mode: str = "canonical") -> Rollout:
    """Rewards of each prompt's completions against its row's label."""
    end = policy.tokenizer.convert_tokens_to_ids(IM_END)
    completions, texts, labels = [], [], []
    for example, group in zip(examples, groups):
        for completion in group:
            # A completion that stopped keeps its end-of-turn token: stopping is learned too.
            completions.append(completion.ids + ([end] if completion.stopped else []))
            texts.append(completion.text)
            labels.append(example.row.label)
    rewards = reward_function(weights, accuracy_mode)(texts, solution=labels)
    return Rollout(
        examples, completions, texts,
        rewards=torch.tensor([r if r is not None else 0.0 for r in rewards], dtype=torch.float32),
        accuracy=torch.tensor(accuracy_reward(texts, labels, mode=accuracy_mode), dtype=torch.float32),
        formatted=torch.tensor(format_reward(texts), dtype=torch.float32),
    )
