from pathlib import Path

import pytest

from r1omni.cli import main
from r1omni.errors import ConfigError
from r1omni.train.config import load_config, save_config


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a", "label": "happy", "dataset": "x", "audio": "a.wav"}\n')
    return path


def test_yaml_then_overrides_then_types(tmp_path, manifest):
    path = tmp_path / "c.yaml"
    path.write_text(f"data:\n  train: {manifest}\ntrain:\n  lr: 1e-5\n  batch_size: 16\ngrpo:\n  num_generations: 4\n")
    config = load_config(path, ["train.lr=2e-6", "grpo.beta=0", "data.modalities=[audio]"])
    assert config.train.lr == 2e-6 and isinstance(config.train.lr, float)
    assert config.grpo.beta == 0.0 and config.grpo.num_generations == 4 and config.train.batch_size == 16
    assert config.data.modalities == ["audio"]
    save_config(config, tmp_path / "resolved.yaml")
    again = load_config(tmp_path / "resolved.yaml")
    assert again == config


def test_presets_sit_under_the_file_and_overrides(manifest):
    dapo = load_config(None, [f"data.train={manifest}", "grpo.preset=dapo"])
    assert (dapo.grpo.beta, dapo.grpo.loss_type, dapo.grpo.epsilon_high, dapo.grpo.dynamic_sampling) == \
        (0.0, "dapo", 0.28, True)
    mine = load_config(None, [f"data.train={manifest}", "grpo.preset=dapo", "grpo.epsilon_high=0.3"])
    assert mine.grpo.epsilon_high == 0.3
    paper = load_config(None, [f"data.train={manifest}", "grpo.preset=r1omni"])
    assert (paper.grpo.beta, paper.grpo.num_generations, paper.train.lr, paper.grpo.loss_type) == \
        (0.04, 8, 1e-6, "grpo")
    assert load_config(None, [f"data.train={manifest}", "grpo.preset=dr_grpo"]).grpo.scale_rewards == "none"


@pytest.mark.parametrize("items, message", [
    (["grpo.num_generations=1"], "num_generations must be at least 2"),
    (["train.batch_size=10"], "multiple of grpo.num_generations"),
    (["model.preset=giant"], "model.preset must be one of nano, nano-base, r1omni-0.5b, smol-omni, qwen2.5-omni"),
    (["grpo.loss_type=ppo"], "grpo.loss_type must be one of grpo, bnpo, dr_grpo, dapo"),
    (["data.train=/no/such.jsonl"], "data.train: /no/such.jsonl does not exist"),
    (["train.speed=3"], r"unknown keys \['speed'\] in train"),
    (["train.lr=fast"], "train.lr must be float, got 'fast'"),
    (["grpo.preset=ppo"], "grpo.preset must be one of"),
    (["grpo.reward_weights={length: 1}"], "unknown reward 'length'"),
    (["grpo.reward_weights={no_such_module:fn: 1}"], "cannot import"),
    (["sft.target=essay"], "sft.target"),
    (["train.distributed=deepspeed"], "train.distributed must be one of auto, ddp, fsdp"),
    (["data.media_cache_mb=-1"], "data.media_cache_mb must be >= 0"),
    (["trainlr"], "section.key=value"),
    # Hostile values (issue 14): each named before any model loads.
    (["train.lr=inf"], "train.lr must be a finite number"),
    (["train.lr=.nan"], "train.lr must be a finite number"),
    (["train.max_steps=-1"], "train.max_steps must be >= 1"),
    (["train.epochs=-2"], "train.epochs must be > 0"),
    (["data.max_rows=-5"], "data.max_rows must be >= 1"),
    (["grpo.beta=-0.1"], "grpo.beta must be >= 0"),
    (["train.warmup_ratio=-0.5"], r"train.warmup_ratio must be in \[0, 1\)"),
    (["sft.max_length=-1"], "sft.max_length must be >= 2"),
    (["grpo.top_p=0"], r"grpo.top_p must be in \(0, 1\]"),
    (["grpo.top_p=1.5"], r"grpo.top_p must be in \(0, 1\]"),
    (["train.log_every=0"], "train.log_every must be >= 1"),
    (["train.seed=-1"], "train.seed must be >= 0"),
    (["model.lora={r: -1}"], "model.lora.r must be an integer >= 1"),
    (["model.lora={rank: 4}"], r"model.lora: unknown keys \['rank'\]"),
    (["grpo.reward_weights={accuracy: abc}"], "grpo.reward_weights.accuracy must be float"),
    (["grpo.reward_weights={os:system: 1}"], "does not take a reward function's arguments"),
    (["grpo.preset=[1]"], "grpo.preset must be one of"),
    (["grpo.preset={a: 1}"], "grpo.preset must be one of"),
    (["grpo=3"], "grpo must be a mapping"),
])
def test_invalid_configs_are_named(manifest, items, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"data.train={manifest}", *items])


def test_cli_rejects_a_bad_config_before_loading_a_model(tmp_path, capsys):
    assert main(["grpo", "data.train=/no/such.jsonl", "grpo.num_generations=1"]) == 2
    err = capsys.readouterr().err
    assert "num_generations must be at least 2" in err and "does not exist" in err
    assert main(["sft", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_an_output_dir_that_is_a_file_is_named(manifest, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("x")
    with pytest.raises(ConfigError, match="train.output_dir: .*taken is a file"):
        load_config(None, [f"data.train={manifest}", f"train.output_dir={taken}"])


def test_a_config_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("train:\n  output_dir: r\xe9sultats\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.yaml: not UTF-8"):
        load_config(path)


SHIPPED = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def test_the_shipped_configs_are_found():
    assert len(SHIPPED) >= 5


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    kind = "grpo" if "grpo" in path.name else "sft"
    config = load_config(path, kind=kind, check_files=False)
    assert config.train.output_dir.startswith("runs/")
