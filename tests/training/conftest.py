"""A tiny synthetic world on disk and a tiny saved nano model, shared by the training tests."""

import pytest
import torch

from r1omni.data.synth import WorldConfig, write_world
from r1omni.models import nano

CORPUS = ["<think>The brows are lowered and the voice is loud.</think>\n<answer>angry</answer>",
          "<think>A smile and lively intonation.</think>\n<answer>happy</answer>",
          "As an emotional recognition expert; which emotion? Output <think> </think> <answer> </answer>",
          "sad neutral surprise disgust fear happy angry"] * 10


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    write_world(WorldConfig(seed=3, sizes={"coldstart": 12, "rl": 12, "val": 4}), out,
                splits=("coldstart", "rl", "val"), workers=1)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    lm = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
    policy = nano(CORPUS, vocab_size=300, lm=lm, vision={"width": 16}, audio={"width": 16}, projector_hidden=32)
    return policy.save_pretrained(tmp_path_factory.mktemp("model") / "nano")


def overrides(world_dir, tiny_model, out, **extra):
    base = {"data.train": world_dir / "rl.jsonl", "model.path": tiny_model, "train.output_dir": out,
            "train.batch_size": 8, "train.micro_batch_size": 4, "grpo.num_generations": 4, "train.max_steps": 2,
            "grpo.max_completion_length": 8, "train.lr": 1e-3, "train.scheduler": "constant"}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]
