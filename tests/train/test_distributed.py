"""Two CPU processes (gloo, launched by torchrun or accelerate) equal one process on the same
global batch, with whole models on each (DDP) or sharded ones (FSDP). GRPO on every backend is in
tests/test_backend_matrix.py; here: SFT, DAPO's extra sampling rounds, and accelerate's launcher."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import overrides

from r1omni.models import OmniPolicy
from r1omni.train.config import load_config
from r1omni.train.stages import train

ROOT = Path(__file__).parents[2]
EXTRA = {"grpo.beta": 0.04, "grpo.reward_weights": "{reward_plugin:vowel_reward: 1.0, format: 1.0}"}


def _data(world_dir, kind):
    """Training rows, and validation rows that each process evaluates its share of."""
    return {"data.train": world_dir / ("rl.jsonl" if kind == "grpo" else "coldstart.jsonl"),
            "data.val": world_dir / "val.jsonl", "train.eval_every": 2}


@pytest.fixture(scope="module")
def single(world_dir, tiny_model, tmp_path_factory):
    """The one-process run of each kind, trained once for the tests below."""
    runs = {}

    def run(kind):
        if kind not in runs:
            out = tmp_path_factory.mktemp(f"one-{kind}")
            items = overrides(world_dir, tiny_model, out, **_data(world_dir, kind), **EXTRA)
            config = load_config(None, items, kind=kind)
            train(config)
            runs[kind] = OmniPolicy.from_pretrained(out / "final").state_dict()
        return runs[kind]

    return run


def _launch(launcher: list[str], kind: str, items: list[str]) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}  # every process imports the test reward
    done = subprocess.run([*launcher, "-m", "r1omni.cli", kind, *items], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]
    return done


def _assert_same(one: dict, folder: Path, start: Path) -> None:
    two = OmniPolicy.from_pretrained(folder).state_dict()
    initial = OmniPolicy.from_pretrained(start).state_dict()
    assert any(not torch.equal(one[k], initial[k]) for k in one)  # training moved the weights
    assert two.keys() == one.keys()
    for name in one:
        # Float sums in another order differ; Adam's normalisation lets that rounding grow in weights
        # whose gradients are tiny, so the bound is relative to how far training moved the tensor.
        gap, moved = (float((w - v).abs().max()) for w, v in ((one[name], two[name]), (one[name], initial[name])))
        assert gap <= max(1e-5, 0.01 * moved), f"{name}: max difference {gap}, moved by {moved}"


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def _torchrun() -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", _free_port()]


@pytest.mark.slow
@pytest.mark.parametrize("kind,mode", [("sft", "ddp"), ("sft", "fsdp")])
def test_two_processes_match_one(world_dir, tiny_model, tmp_path, single, kind, mode):
    out = tmp_path / "two"
    items = overrides(world_dir, tiny_model, out, **{**_data(world_dir, kind), "train.distributed": mode,
                                                     **EXTRA})
    done = _launch(_torchrun(), kind, items)
    assert f"2 processes, {mode}" in done.stdout + done.stderr
    _assert_same(single(kind), out / "final", tiny_model)
    assert "val_uar" in (out / "metrics.jsonl").read_text()


@pytest.mark.slow
def test_dynamic_sampling_keeps_sharded_processes_in_step(world_dir, tiny_model, tmp_path):
    """DAPO's dynamic sampling under FSDP: processes agree on the number of extra sampling rounds
    and generate inside one gather per step, so none waits on a collective the other skips."""
    out = tmp_path / "dapo"
    items = overrides(world_dir, tiny_model, out, **{"grpo.preset": "dapo", "train.distributed": "fsdp",
                                                     "train.max_steps": 3, **EXTRA})
    _launch(_torchrun(), "grpo", items)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow
def test_accelerate_fsdp_config_shards_and_resumes(world_dir, tiny_model, tmp_path, single):
    """`accelerate launch --config_file configs/accelerate/fsdp.yaml` selects FSDP; a sharded
    checkpoint after step 1 resumes to the same weights as the straight run."""
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(ROOT / "configs" / "accelerate" / "fsdp.yaml"), "--num_processes", "2",
                "--main_process_port", _free_port()]
    out = tmp_path / "two"
    settings = {**_data(world_dir, "grpo"), **EXTRA}
    items = overrides(world_dir, tiny_model, out, **{**settings, "train.save_every": 1, "train.max_steps": 1})
    done = _launch(launcher, "grpo", items)
    assert "2 processes, fsdp" in done.stdout + done.stderr
    resumed = overrides(world_dir, tiny_model, out, **{**settings, "train.max_steps": 2})
    _launch(launcher, "grpo", [*resumed, "--resume", str(out / "checkpoint-1")])
    _assert_same(single("grpo"), out / "final", tiny_model)


def test_distributed_mode_follows_accelerate(monkeypatch):
    from r1omni.errors import ConfigError
    from r1omni.train.dist import distributed_mode

    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert distributed_mode("auto") == "ddp"
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert distributed_mode("auto") == "fsdp"
    assert distributed_mode("ddp") == "ddp"  # an explicit setting wins
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(ConfigError, match="DeepSpeed is not supported"):
        distributed_mode("auto")
