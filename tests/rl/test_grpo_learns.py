"""GRPO learns: on a tiny task with a learnable reward, the reward rises within a few dozen steps."""

import json

import pytest
from train_helpers import overrides

from r1omni.rl.trainer import GRPOTrainer
from r1omni.train.config import load_config


@pytest.mark.slow
def test_grpo_raises_a_learnable_reward(world_dir, tiny_model, tmp_path):
    # The reward counts vowels in the completion: an untrained model's completions already differ
    # in it, so every group has a signal, and nothing but the policy's sampling can change it.
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "learn", **{
        "grpo.reward_weights": "{reward_plugin:vowel_reward: 1.0}", "grpo.beta": 0.0, "train.max_steps": 40,
        "train.lr": 3e-3, "train.batch_size": 16, "train.micro_batch_size": 16, "grpo.num_generations": 4}))
    GRPOTrainer(config).run()
    rewards = [json.loads(line)["reward"] for line in (tmp_path / "learn" / "metrics.jsonl").read_text().splitlines()]
    first, last = sum(rewards[:10]) / 10, sum(rewards[-10:]) / 10
    assert last > first + 0.1 and last > 1.5 * first, (first, last)
