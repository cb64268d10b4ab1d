"""Two CPU processes (gloo, launched by torchrun) equal one process on the same global batch."""

import os
import subprocess
import sys

import pytest
import torch
from conftest import overrides

from r1omni.config import load_config
from r1omni.models import OmniPolicy
from r1omni.rl.trainer import GRPOTrainer
from r1omni.sft import SFTTrainer


@pytest.mark.parametrize("kind", ["grpo", "sft"])
def test_two_processes_match_one(world_dir, tiny_model, tmp_path, kind):
    extra = {"data.train": world_dir / ("rl.jsonl" if kind == "grpo" else "coldstart.jsonl"), "grpo.beta": 0.04,
             "grpo.reward_weights": "{test_rewards_plugin:vowel_reward: 1.0, format: 1.0}"}
    single = load_config(None, overrides(world_dir, tiny_model, tmp_path / "one", **extra), kind=kind)
    (GRPOTrainer if kind == "grpo" else SFTTrainer)(single).run()

    items = overrides(world_dir, tiny_model, tmp_path / "two", **extra)
    here = os.path.dirname(__file__)
    path = os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}  # every process imports the test reward
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
               "-m", "r1omni.cli", kind, *items]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    one = OmniPolicy.from_pretrained(tmp_path / "one" / "final").state_dict()
    two = OmniPolicy.from_pretrained(tmp_path / "two" / "final").state_dict()
    start = OmniPolicy.from_pretrained(tiny_model).state_dict()
    assert any(not torch.equal(one[k], start[k]) for k in one)  # training moved the weights
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-5, rtol=1e-4), name
