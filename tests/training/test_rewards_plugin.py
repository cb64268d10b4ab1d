"""A reward function named by import path, as a user brings one (also used by the
distributed test, where every process imports it)."""

import pytest

from r1omni.config import ConfigError
from r1omni.rl.rollout import import_reward, reward_function


def vowel_reward(completions, **_columns):
    """Rewards that differ between completions even for an untrained model."""
    return [sum(ch in "aeiou" for ch in text) / 10 for text in completions]


def test_named_reward_functions():
    combined = reward_function({"accuracy": 1.0, "test_rewards_plugin:vowel_reward": 2.0}, "canonical")
    # 7 vowels in the first completion: 1 (accuracy) + 2 x 0.7
    assert combined(["<think>x</think><answer>sad</answer>", "zzz"], solution=["sad", "sad"]) == \
        pytest.approx([2.4, 0.0])
    with pytest.raises(ConfigError, match="cannot import"):
        import_reward("nowhere:nothing")
