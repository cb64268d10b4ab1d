"""Per-corpus standardisation of frozen tower features: fitted when training starts, saved with
the model, refitted on a test corpus by `r1omni eval --standardize corpus`."""

import json

import numpy as np
import pytest
import torch
from train_helpers import overrides

from r1omni.cli import main
from r1omni.data import read_manifest
from r1omni.errors import ConfigError
from r1omni.media import write_audio
from r1omni.models import ComposedPolicy, OmniPolicy, PolicyConfig
from r1omni.models.standardize import FeatureStandardizer, fit_standardizers
from r1omni.predict import Predictor
from r1omni.train.config import load_config
from r1omni.train.stages import train


@pytest.fixture(scope="module")
def smol_shape(tmp_path_factory):
    torch.manual_seed(0)
    return ComposedPolicy.tiny_variants()["smol-shape"]().save_pretrained(tmp_path_factory.mktemp("smol") / "model")


def _clips(policy, rows, modalities=("audio",)):
    return [policy.read_clip(r.video, r.audio, modalities) for r in rows]


def test_unfitted_is_the_identity_and_fitted_centres_and_scales():
    standardizer = FeatureStandardizer(3)
    x = torch.randn(5, 3) * 4 + 2
    assert torch.equal(standardizer(x), x)
    standardizer.set_statistics(x.mean(0), x.std(0, unbiased=False), clips=1)
    y = standardizer(x)
    assert standardizer.fitted and torch.allclose(y.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std(0, unbiased=False), torch.ones(3), atol=1e-4)


def test_fit_gives_unit_statistics_over_the_corpus_frames(smol_shape, world_dir):
    policy = OmniPolicy.from_pretrained(smol_shape)
    clips = _clips(policy, read_manifest(world_dir / "rl.jsonl"))
    assert fit_standardizers(policy, clips) == {"audio": len(clips)}
    audio = policy.feature_standardizers()["audio"]
    with torch.no_grad():
        frames = torch.cat([audio(policy.tower_features("audio", c)) for c in clips])  # [all frames, D]
    assert torch.allclose(frames.mean(0), torch.zeros(frames.shape[1]), atol=1e-4)
    assert torch.allclose(frames.std(0, unbiased=False), torch.ones(frames.shape[1]), atol=1e-3)
    assert not policy.feature_standardizers()["video"].fitted  # no clip showed it


def test_only_frozen_towers_may_be_standardised(smol_shape):
    config = json.loads((smol_shape / "r1omni_config.json").read_text())
    config["frozen"] = ["video"]
    with pytest.raises(ConfigError, match=r"standardize names \['audio'\], which are not frozen"):
        PolicyConfig(**config).validate()


def test_training_fits_the_statistics_once_and_records_the_task(smol_shape, world_dir, tmp_path, capsys):
    config = load_config(None, overrides(world_dir, smol_shape, tmp_path / "sft", **{
        "data.train": world_dir / "coldstart.jsonl", "data.modalities": "[audio]", "data.labels": "emodb",
        "data.prompt": "options", "model.feature_cache": tmp_path / "cache"}), kind="sft")
    final = train(config)
    assert "standardising audio features by the statistics of 12 training clips" in capsys.readouterr().out
    policy = OmniPolicy.from_pretrained(final)
    assert int(policy.feature_standardizers()["audio"].clips) == 12
    assert policy.config.task == {"prompt": "options", "labels": "emodb", "modalities": ["audio"]}
    # Training on from it keeps those statistics rather than fitting the new rows'.
    again = load_config(None, overrides(world_dir, final, tmp_path / "again", **{
        "data.train": world_dir / "rl.jsonl", "data.modalities": "[audio]"}), kind="sft")
    second = train(again)
    before = policy.feature_standardizers()["audio"].mean
    assert torch.equal(OmniPolicy.from_pretrained(second).feature_standardizers()["audio"].mean, before)


def _speech_model(smol_shape, tmp_path):
    """The tiny smol-shape model as a trained audio-only Emo-DB model would be recorded."""
    policy = OmniPolicy.from_pretrained(smol_shape)
    policy.config.task = {"prompt": "options", "labels": "emodb", "modalities": ["audio"]}
    return policy.save_pretrained(tmp_path / "speech")


def _tone(path, rate, seconds, hz=220.0):
    t = np.arange(int(rate * seconds)) / rate
    return str(write_audio(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate))


def test_eval_of_real_audio_clips_at_any_rate_maps_and_drops_labels(smol_shape, tmp_path, capsys):
    """Another corpus's labels on the model's vocabulary: 'fearful' is its 'fear', 'calm' and
    'surprised' it never learnt (dropped and counted); clips of any rate and length, audio only."""
    clips = {"a": ("fearful", 8_000, 1.3), "b": ("angry", 44_100, 7.0), "c": ("calm", 48_000, 2.0),
             "d": ("surprised", 22_050, 0.4), "e": ("sad", 48_000, 35.0)}
    rows = [{"id": k, "label": label, "dataset": "other", "audio": _tone(tmp_path / f"{k}.wav", rate, seconds)}
            for k, (label, rate, seconds) in clips.items()]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    code = main(["eval", "--manifest", str(manifest), "--model", str(_speech_model(smol_shape, tmp_path)),
                 "--out", str(out), "--max-new-tokens", "4", "--standardize", "corpus"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "dropped 2 rows labelled with classes the model was not trained on: calm (1), surprise (1)" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["dropped_labels"] == {"calm": 1, "surprise": 1}
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["label"] for p in predictions] == ["fear", "angry", "sad"]
    assert not any(p.get("error") for p in predictions)
    assert "Dropped, labels the model was not trained on: calm (1 rows), surprise (1 rows)" in \
        (out / "report.md").read_text()


def test_corpus_standardisation_refits_on_the_evaluated_clips(smol_shape, world_dir, tmp_path):
    predictor = Predictor(OmniPolicy.from_pretrained(_speech_model(smol_shape, tmp_path)))
    assert predictor.modalities == ("audio",) and predictor.prompt == "options"
    rows = read_manifest(world_dir / "val.jsonl")
    assert predictor.standardize_on(rows) == {"audio": len(rows)}
    assert int(predictor.policy.feature_standardizers()["audio"].clips) == len(rows)


def test_eval_of_a_manifest_with_no_label_the_model_knows_says_so(smol_shape, tmp_path, capsys):
    rows = [{"id": "a", "label": "calm", "dataset": "other", "audio": _tone(tmp_path / "a.wav", 16_000, 1.0)}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["eval", "--manifest", str(manifest), "--model", str(_speech_model(smol_shape, tmp_path))])
    assert code == 2
    assert "no row has a label the model knows (angry, boredom, disgust, fear, happy, sad, neutral); labels found: " \
        "calm" in capsys.readouterr().err
