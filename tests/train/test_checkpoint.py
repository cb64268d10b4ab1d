"""Checkpoints hold no pickled objects: a crafted ``training.pt`` cannot run code on --resume."""

import pickle
import shutil

import pytest
import torch
from train_helpers import overrides

from r1omni.cli import main
from r1omni.errors import ConfigError
from r1omni.train.config import load_config
from r1omni.train.loop import setup
from r1omni.train.stages import train


class _Payload:
    """Unpickling this calls `marker.touch()`: what an attacker's checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (self.marker.__class__.touch, (self.marker,))


@pytest.fixture(scope="module")
def checkpoint(world_dir, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    items = overrides(world_dir, tiny_model, out, **{"data.train": world_dir / "coldstart.jsonl",
                                                    "train.save_every": 1, "train.max_steps": 1})
    train(load_config(None, items, kind="sft"))
    return out / "checkpoint-1", items


def test_training_state_is_plain_tensors_and_values(checkpoint):
    folder, _ = checkpoint
    saved = torch.load(folder / "training.pt", weights_only=True)  # raises on any pickled object
    assert {"optimizer", "scheduler", "rng"} <= set(saved)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_malicious_training_state_does_not_run(checkpoint, tmp_path, capsys):
    folder, items = checkpoint
    crafted = shutil.copytree(folder, tmp_path / "crafted")
    marker = tmp_path / "code-ran"
    with open(crafted / "training.pt", "wb") as handle:
        pickle.dump({"optimizer": _Payload(marker)}, handle)
    assert not marker.exists()
    assert main(["sft", *items, f"train.output_dir={tmp_path / 'out'}", "--resume", str(crafted)]) == 2
    assert not marker.exists()
    assert "training.pt: holds pickled objects" in capsys.readouterr().err


def test_damaged_trainer_state_is_a_config_error(world_dir, checkpoint, tmp_path):
    folder, items = checkpoint
    damaged = shutil.copytree(folder, tmp_path / "damaged")
    (damaged / "trainer_state.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ConfigError, match="damaged"):
        setup(load_config(None, items, kind="sft"), resume=damaged)
