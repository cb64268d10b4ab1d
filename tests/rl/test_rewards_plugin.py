"""A reward function named by import path, as a user brings one."""

import pytest

from r1omni.errors import ConfigError
from r1omni.rewards import import_reward, reward_function


def test_named_reward_functions():
    combined = reward_function({"accuracy": 1.0, "reward_plugin:vowel_reward": 2.0}, "canonical")
    # 7 vowels in the first completion: 1 (accuracy) + 2 x 0.7
    assert combined(["<think>x</think><answer>sad</answer>", "zzz"], solution=["sad", "sad"]) == \
        pytest.approx([2.4, 0.0])
    with pytest.raises(ConfigError, match="cannot import"):
        import_reward("nowhere:nothing")
    with pytest.raises(ConfigError, match="unknown reward 'speed'"):
        import_reward("speed")
