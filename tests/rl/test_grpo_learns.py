"""GRPO learns: on a tiny task with a learnable reward, the reward rises within a few dozen steps."""

import json

import pytest
from train_helpers import overrides

from r1omni.train.config import load_config
from r1omni.train.stages import train


@pytest.mark.slow
def test_grpo_raises_a_learnable_reward(world_dir, tiny_model, tmp_path):
    # The reward counts vowels in the completion: an untrained model's completions already differ
    # in it, so every group has a signal, and nothing but the policy's sampling can change it.
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "learn", **{
        "grpo.reward_weights": "{reward_plugin:vowel_reward: 1.0}", "grpo.beta": 0.0, "train.max_steps": 40,
        "train.lr": 3e-3, "train.batch_size": 16, "train.micro_batch_size": 16, "grpo.num_generations": 4}))
    train(config)
    rewards = [json.loads(line)["reward"] for line in (tmp_path / "learn" / "metrics.jsonl").read_text().splitlines()]
    first, last = sum(rewards[:10]) / 10, sum(rewards[-10:]) / 10
    assert last > first + 0.1 and last > 1.5 * first, (first, last)


@pytest.mark.slow
def test_grpo_raises_faithfulness_to_the_measured_cues(world_dir, tiny_model, tmp_path):
    # A short cold start teaches the tiny model to say, of every clip, one of two face cues and one
    # of two voice cues, each pair as often (each clip appears once with each pair); then every RL
    # clip is measured to show the first of each, so that the faithfulness reward is learnable
    # without perception (as the vowel reward is): GRPO on that reward alone must make the
    # reasoning claim those cues more and the others less.
    from dataclasses import replace
    from itertools import product

    from r1omni.data import read_manifest, write_manifest
    from r1omni.train.stages import train

    rows = read_manifest(world_dir / "coldstart.jsonl")
    pairs = list(product(["smile", "frown"], ["loud", "subdued"]))
    said = write_manifest([replace(row, id=f"{row.id}-{k}", rationale=f"{face}, {voice}.") for row in rows
                           for k, (face, voice) in enumerate(pairs)], tmp_path / "said.jsonl")
    cold = load_config(None, overrides(world_dir, tiny_model, tmp_path / "cold", **{
        "data.train": said, "sft.target": "reasoning", "train.max_steps": 80, "train.lr": 5e-3,
        "train.batch_size": 16, "train.micro_batch_size": 16}), kind="sft")
    train(cold)
    measured = write_manifest([replace(row, cues={**row.cues, "face_cues": ["smile"], "voice_cues": ["loud"]})
                               for row in rows], tmp_path / "measured.jsonl")
    config = load_config(None, overrides(world_dir, tmp_path / "cold" / "final", tmp_path / "faith", **{
        "data.train": measured, "grpo.reward_weights": "{faithfulness: 1.0}", "grpo.beta": 0.0,
        "train.max_steps": 30, "train.lr": 5e-4, "train.batch_size": 16, "train.micro_batch_size": 16,
        "grpo.num_generations": 4, "grpo.max_completion_length": 40}))
    train(config)
    metrics = [json.loads(line) for line in (tmp_path / "faith" / "metrics.jsonl").read_text().splitlines()]
    rewards = [m["reward_faithfulness"] for m in metrics]
    assert all(m["faithfulness_unscored"] == 0.0 for m in metrics)
    first, last = sum(rewards[:8]) / 8, sum(rewards[-8:]) / 8
    assert last > first + 0.3, (first, last)
