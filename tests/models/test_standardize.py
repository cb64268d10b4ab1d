"""Per-corpus standardisation of frozen tower features: fitted when training starts, saved with
the model; each corpus's or speaker's own statistics in training (`data.standardize_by`) and in
`r1omni eval --standardize corpus|speaker`, and the given clips' own in `r1omni predict
--standardize clips`."""

import json
from dataclasses import replace

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
from r1omni.train.loop import setup
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
    assert policy.config.task == {"prompt": "options", "labels": "emodb", "modalities": ["audio"],
                                  "feature_statistics": "synth 12"}
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
    # The corpus's statistics come from all five clips: which are scored depends on labels, they must not.
    assert {p["statistics"]["audio"] for p in predictions} == {"other (5 clips)"}
    assert "Dropped, labels the model was not trained on: calm (1 rows), surprise (1 rows)" in \
        (out / "report.md").read_text()


def test_corpus_standardisation_fits_each_corpus_and_keeps_the_models_own(smol_shape, world_dir, tmp_path):
    predictor = Predictor(OmniPolicy.from_pretrained(_speech_model(smol_shape, tmp_path)))
    assert predictor.modalities == ("audio",) and predictor.prompt == "options"
    rows = read_manifest(world_dir / "val.jsonl")
    first, second = rows[: len(rows) // 2], [replace(r, dataset="other") for r in rows[len(rows) // 2 :]]
    audio = predictor.policy.feature_standardizers()["audio"]
    fit_standardizers(predictor.policy, _clips(predictor.policy, first))  # as training would
    own = audio.mean.clone()
    assert predictor.standardize_on(first + second) == {"audio": len(rows)}
    assert torch.equal(audio.mean, own)  # the model's own statistics are untouched
    assert {name: clips for name, (_, _, clips) in audio.groups.items()} == {"synth": len(first),
                                                                            "other": len(second)}
    # Each corpus's clips come out centred by that corpus's statistics alone.
    for group, members in (("synth", first), ("other", second)):
        media = [predictor.read(r.id, r.video, r.audio) for r in members]
        assert {m.statistics for m in media} == {group}
        with torch.no_grad():
            frames = torch.cat([audio(predictor.policy.tower_features("audio", m), m.statistics) for m in media])
        assert torch.allclose(frames.mean(0), torch.zeros(frames.shape[1]), atol=1e-4)
    (prediction,) = predictor.predict_media([(second[0].id, predictor.read(second[0].id, None, second[0].audio))])
    assert prediction.statistics == {"audio": f"other ({len(second)} clips)"}
    # A clip outside the fitted rows keeps the model's training statistics, and says so.
    (outside,) = predictor.predict_media([("new", predictor.read("new", None, first[0].audio))])
    assert outside.statistics == {"audio": f"the model's training clips ({len(first)} clips)"}


def test_speaker_groups_and_scores_per_corpus_and_speaker(smol_shape, world_dir, tmp_path):
    rows = read_manifest(world_dir / "val.jsonl")
    half = len(rows) // 2
    rows = [replace(r, speaker=str(i % 2), dataset="synth" if i < half else "other") for i, r in enumerate(rows)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r.to_json()) + "\n" for r in rows))
    out = tmp_path / "eval"
    assert main(["eval", "--manifest", str(manifest), "--model", str(_speech_model(smol_shape, tmp_path)),
                 "--out", str(out), "--max-new-tokens", "4", "--standardize", "speaker"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["statistics"] == "speaker"
    assert set(metrics["by_corpus"]) == {"synth", "other"}
    assert set(metrics["by_speaker"]) == {"synth 0", "synth 1", "other 0", "other 1"}
    assert sum(g["n"] for g in metrics["by_speaker"].values()) == metrics["n"] > 0
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert {p["statistics"]["audio"].split(" (")[0] for p in predictions} == \
        {"synth speaker 0", "synth speaker 1", "other speaker 0", "other speaker 1"}
    assert "By speaker (audio" in (out / "report.md").read_text()


def test_training_by_corpus_standardises_each_corpus_by_its_own(smol_shape, world_dir, tmp_path, capsys):
    rows = read_manifest(world_dir / "coldstart.jsonl")
    mixed = [replace(r, dataset="synth" if i % 3 else "other") for i, r in enumerate(rows)]
    manifest = tmp_path / "mixed.jsonl"
    manifest.write_text("".join(json.dumps(r.to_json()) + "\n" for r in mixed))
    config = load_config(None, overrides(world_dir, smol_shape, tmp_path / "sft", **{
        "data.train": manifest, "data.modalities": "[audio]", "data.labels": "emodb", "data.prompt": "options",
        "data.standardize_by": "corpus", "model.feature_cache": tmp_path / "cache"}), kind="sft")
    state = setup(config)
    assert "each corpus by its own (other, synth)" in capsys.readouterr().out
    audio = state.policy.feature_standardizers()["audio"]
    assert {name: clips for name, (_, _, clips) in audio.groups.items()} == {"other": 4, "synth": 8}
    assert int(audio.clips) == 12 and state.policy.config.task["feature_statistics"] == "other 4, synth 8"
    examples = state.stream.next_examples(len(mixed))
    assert {e.row.id: e.media.statistics for e in examples} == {r.id: r.dataset for r in mixed}
    with pytest.raises(ConfigError, match="data.standardize_by must be one of corpus, speaker, got 'room'"):
        load_config(None, overrides(world_dir, smol_shape, tmp_path / "bad", **{
            "data.train": manifest, "data.standardize_by": "room"}), kind="sft").validate()


def test_predict_standardises_by_the_clips_given(smol_shape, world_dir, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    for i, row in enumerate(read_manifest(world_dir / "val.jsonl")[:3]):
        (folder / f"{i}.wav").symlink_to(row.audio)
    code = main(["predict", str(folder), "--model", str(_speech_model(smol_shape, tmp_path)), "--max-new-tokens", "4",
                 "--standardize", "clips", "--out", str(tmp_path / "p.jsonl")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "standardising audio features by the statistics of the 3 clips given" in printed
    assert printed.count("audio features standardised by: the 3 clips given (3 clips)") == 3
    predictions = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [p["statistics"] for p in predictions] == [{"audio": "the 3 clips given (3 clips)"}] * 3


def test_eval_of_a_manifest_with_no_label_the_model_knows_says_so(smol_shape, tmp_path, capsys):
    rows = [{"id": "a", "label": "calm", "dataset": "other", "audio": _tone(tmp_path / "a.wav", 16_000, 1.0)}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["eval", "--manifest", str(manifest), "--model", str(_speech_model(smol_shape, tmp_path))])
    assert code == 2
    assert "no row has a label the model knows (angry, boredom, disgust, fear, happy, sad, neutral); labels found: " \
        "calm" in capsys.readouterr().err


def test_predict_standardize_clips_on_a_model_without_standardised_towers_says_so(tiny_model, world_dir, capsys):
    clip = read_manifest(world_dir / "val.jsonl")[0].audio
    code = main(["predict", clip, "--model", str(tiny_model), "--max-new-tokens", "4", "--standardize", "clips"])
    assert code == 2
    assert "this model standardises no tower features; there is nothing to refit" in capsys.readouterr().err
