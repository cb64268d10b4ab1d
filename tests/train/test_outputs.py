"""Training outputs survive interruption: checkpoints and final/ appear whole or not at all,
leftovers of a killed save are cleaned, a resume does not log a step twice, old checkpoints
are pruned, and a run may not overwrite the model it starts from."""

import json

import pytest
from train_helpers import overrides

from r1omni.atomic import clean_leftovers, publish_folder, replacing, write_text
from r1omni.errors import ConfigError
from r1omni.models import load_policy
from r1omni.models.base import OmniPolicy
from r1omni.train.config import load_config
from r1omni.train.stages import train


def _sft(world_dir, model, out, **extra):
    items = overrides(world_dir, model, out, **{"data.train": world_dir / "coldstart.jsonl", **extra})
    return load_config(None, items, kind="sft")


def test_a_file_is_replaced_whole_or_left_as_it_was(tmp_path):
    path = write_text(tmp_path / "metrics.json", "old")
    with pytest.raises(RuntimeError), replacing(path) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    write_text(path, "new")
    assert path.read_text() == "new"


def test_a_folder_is_swapped_in_and_leftovers_are_cleaned(tmp_path):
    old, new = tmp_path / "final", tmp_path / ".final.tmp-1"
    for folder, text in ((old, "old"), (new, "new")):
        folder.mkdir()
        (folder / "weights").write_text(text)
    publish_folder(new, old)
    assert (old / "weights").read_text() == "new" and not new.exists()
    (tmp_path / ".checkpoint-4.tmp-123").mkdir()
    (tmp_path / ".metrics.json.tmp-9").write_text("x")
    assert len(clean_leftovers(tmp_path)) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_a_crash_while_saving_final_keeps_the_model_that_was_there(world_dir, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "run"
    first = train(_sft(world_dir, tiny_model, out, **{"train.max_steps": 1}))
    before = (first / "model.safetensors").read_bytes()
    real_save = OmniPolicy.save_pretrained

    def dies_half_way(self, directory, weights=None):
        real_save(self, directory, weights)
        (directory / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(OmniPolicy, "save_pretrained", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        train(_sft(world_dir, tiny_model, out, **{"train.max_steps": 2}))
    assert (first / "model.safetensors").read_bytes() == before
    load_policy(first)  # still a valid model
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_resumed_run_logs_each_step_once_and_keeps_the_newest_checkpoints(world_dir, tiny_model, tmp_path):
    out = tmp_path / "run"
    config = _sft(world_dir, tiny_model, out, **{"train.max_steps": 3, "train.save_every": 1,
                                                 "train.save_total_limit": 2})
    train(config)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    (out / ".checkpoint-9.tmp-424242").mkdir()  # what a run killed while saving leaves
    with (out / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 4, "loss": 1.0')  # torn by the kill
    train(config, resume=out / "checkpoint-2")
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    assert not (out / ".checkpoint-9.tmp-424242").exists()


def test_a_run_may_not_write_over_the_model_it_starts_from(world_dir, tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="is or holds model.path"):
        _sft(world_dir, tiny_model, tiny_model).validate()
    with pytest.raises(ConfigError, match="is or holds model.path"):
        _sft(world_dir, tiny_model, tiny_model.parent).validate()
    with pytest.raises(ConfigError, match="save_total_limit must be >= 1"):
        _sft(world_dir, tiny_model, tmp_path, **{"train.save_total_limit": 0}).validate()
