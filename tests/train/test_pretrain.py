"""`r1omni pretrain` and the base it shipped: the package's base is the one its record describes."""

import json
from dataclasses import asdict

import pytest

from r1omni.models import OmniPolicy, build_preset
from r1omni.models.cache import content_hash
from r1omni.models.presets import NANO_BASE
from r1omni.pretrain import BUILD_NAME, PretrainSettings, settings_from_json
from r1omni.pretrain.perception import CueTargets


def test_the_shipped_base_is_the_recorded_build_of_the_default_settings():
    record = json.loads((NANO_BASE / BUILD_NAME).read_text())
    assert content_hash(NANO_BASE / "model.safetensors") == record["weights_sha256"]
    # `r1omni pretrain` with its defaults is the command that built it
    assert settings_from_json(record["settings"]) == PretrainSettings()
    assert record["settings"] == asdict(PretrainSettings())


def test_the_shipped_base_loads_with_frozen_towers_and_reads_a_clip(world_dir):
    policy = build_preset("nano-base")
    assert policy.config.frozen == ["video", "audio"] and set(policy.frozen_encoders()) == {"video", "audio"}
    assert policy.config.towers["video"]["kind"] == "frame_cnn" and policy.config.towers["audio"]["kind"] == "mel_cnn"
    row = json.loads((world_dir / "val.jsonl").read_text().splitlines()[0])
    clip = policy.read_clip(world_dir / row["video"], world_dir / row["audio"])
    assert {m: e.shape[-1] for m, e in policy.encode(clip).items()} == {"video": 256, "audio": 256}


def test_cue_targets_need_the_worlds_cues(world_dir):
    from r1omni.data import read_manifest
    from r1omni.errors import R1OmniError

    rows = read_manifest(world_dir / "rl.jsonl")
    targets = CueTargets(rows)
    assert targets.values["video"].shape == (12, 11) and targets.values["audio"].shape == (12, 9)
    rows[3].cues = None
    with pytest.raises(R1OmniError, match="needs rows with cues.aus and cues.prosody"):
        CueTargets(rows)


@pytest.mark.slow
def test_a_quick_pretrain_writes_a_loadable_base_with_its_record(tmp_path):
    from r1omni.cli import main

    assert main(["pretrain", "--quick", "--out", str(tmp_path), "--workers", "1"]) == 0
    record = json.loads((tmp_path / "base" / BUILD_NAME).read_text())
    assert record["weights_sha256"] == content_hash(tmp_path / "base" / "model.safetensors")
    assert set(record["probe"]) == {"test", "ood_test"} and set(record["seconds"]) == {
        "world", "perception", "probe", "captions"}
    assert 0 <= record["probe"]["test"]["emotion_uar"]["both"] <= 1
    policy = OmniPolicy.from_pretrained(tmp_path / "base")
    assert policy.config.frozen == ["video", "audio"]
