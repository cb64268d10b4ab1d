"""The synthetic world: determinism, splits, balance, conflicts, texts, and the mp4 round trip."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1omni.claims import claim_report, measurement_of
from r1omni.data import read_manifest
from r1omni.data.synth import SynthWorld, WorldConfig, ablate, write_world
from r1omni.data.synth.cues import EMOTIONS, MASKS
from r1omni.data.synth.people import IN_DOMAIN, OUT_OF_DOMAIN
from r1omni.errors import R1OmniError
from r1omni.labels import VOCABULARIES, emotions_named
from r1omni.media import read_audio, read_frames

SIZES = {"pretrain": 300, "coldstart": 100, "rl": 2000, "val": 100, "test": 300, "ood_test": 300}


@pytest.fixture(scope="module")
def world():
    return SynthWorld(WorldConfig(seed=7, sizes=SIZES))


@pytest.fixture(scope="module")
def rows(world):
    return {split: world.rows(split) for split in SIZES}


def test_labels_are_dfew_and_rows_are_valid_manifest_rows(rows):
    for split, split_rows in rows.items():
        assert {r.label for r in split_rows} <= set(VOCABULARIES["dfew"])
        assert all(r.split == split and r.dataset == "synth" and r.cues and r.caption and r.rationale
                   for r in split_rows)
    assert len({r.id for split_rows in rows.values() for r in split_rows}) == sum(SIZES.values())


def test_same_seed_same_clips_other_seed_other_clips(world):
    again = SynthWorld(WorldConfig(seed=7, sizes=SIZES))
    a, b = world.sample("test", 3), again.sample("test", 3)
    assert a.row == b.row
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    other = SynthWorld(WorldConfig(seed=8, sizes=SIZES)).sample("test", 3)
    assert other.row.cues != a.row.cues and not np.array_equal(other.frames, a.frames)


def test_test_and_ood_identities_are_unseen(rows):
    speakers = {split: {r.speaker for r in split_rows} for split, split_rows in rows.items()}
    train = speakers["pretrain"] | speakers["coldstart"] | speakers["rl"]
    for held_out in ("val", "test", "ood_test"):
        assert not train & speakers[held_out], held_out
    assert not speakers["test"] & speakers["ood_test"] and not speakers["val"] & speakers["test"]
    assert {r.domain for r in rows["ood_test"]} == {"ood"}
    assert {r.domain for r in rows["test"]} == {"id"}


def test_label_frequencies_follow_the_domain_priors(rows):
    for split, style in (("rl", IN_DOMAIN), ("ood_test", OUT_OF_DOMAIN)):
        counts = Counter(r.label for r in rows[split])
        n = len(rows[split])
        for emotion in EMOTIONS:
            assert abs(counts[emotion] / n - style.priors[emotion]) < 4 * np.sqrt(0.25 / n), (split, emotion)
    # the two domains have different class priors
    assert IN_DOMAIN.priors["neutral"] > 2 * OUT_OF_DOMAIN.priors["neutral"]


def test_conflict_clips_exist_at_the_set_fraction(rows):
    rl = rows["rl"]
    conflicts = [r for r in rl if r.cues["conflict"]]
    assert abs(len(conflicts) / len(rl) - 0.15) < 0.03
    assert {r.label for r in conflicts} <= set(MASKS)
    assert all(r.cues["label_modality"] == "voice" and r.cues["face_display"] == "masked" for r in conflicts)
    smiles = [r for r in conflicts if r.label in ("angry", "sad")]
    assert np.mean([r.cues["aus"]["AU12"] for r in smiles]) > 0.4  # the social smile is there
    none = SynthWorld(WorldConfig(seed=1, sizes={"rl": 500}, conflict_fraction=0.0)).rows("rl")
    assert not any(r.cues["conflict"] for r in none)
    many = SynthWorld(WorldConfig(seed=1, sizes={"rl": 1000}, conflict_fraction=0.3)).rows("rl")
    assert abs(np.mean([r.cues["conflict"] for r in many]) - 0.3) < 0.05


def test_captions_name_no_emotion_and_rationales_name_the_label(rows):
    for row in rows["coldstart"] + rows["test"]:
        assert emotions_named(row.caption) == [], row.caption
        assert row.label in emotions_named(row.rationale), row.rationale


def test_rationales_and_captions_are_faithful_to_the_true_cues(rows):
    for row in rows["coldstart"]:
        for text in (row.rationale, row.caption):
            result = claim_report(text, measurement_of(row.cues))
            assert result["precision"] == 1.0 and result["recall"] == 1.0, (text, result)


def test_rationale_wording_varies(rows):
    texts = [r.rationale for r in rows["coldstart"]]
    openings = Counter(" ".join(t.split()[:3]) for t in texts)
    assert len(openings) >= 12 and openings.most_common(1)[0][1] < 0.2 * len(texts)
    assert len(set(texts)) == len(texts)


def test_in_memory_samples_and_ablations(world):
    sample = world.sample("val", 0)
    assert sample.frames.shape == (8, 112, 112, 3) and sample.frames.dtype == np.uint8
    assert sample.audio.dtype == np.float32 and 2.0 * 16_000 <= sample.audio.size <= 5.0 * 16_000
    assert sample.frames.std() > 10  # a picture, not a flat colour
    audio_only = world.sample("val", 0, modalities=("audio",))
    assert audio_only.frames is None and audio_only.row.video is None and audio_only.row.audio
    assert np.array_equal(audio_only.audio, sample.audio)
    video_only = next(world.samples("val", modalities=("video",), stop=1))
    assert video_only.audio is None and video_only.row.audio is None
    assert np.array_equal(video_only.frames, sample.frames)
    with pytest.raises(R1OmniError, match="modalities"):
        ablate(sample.row, ("smell",))


def test_expressions_move_over_the_clip(world):
    clip = world.clip("rl", 2)
    frames = world.render_frames(clip, np.arange(clip.frame_count)).astype(int)
    assert np.abs(frames[0] - frames[clip.frame_count // 2]).mean() > 1.0


def test_config_validation():
    with pytest.raises(R1OmniError, match="unknown synthetic splits"):
        SynthWorld(WorldConfig(sizes={"train": 5}))
    with pytest.raises(R1OmniError, match="conflict_fraction"):
        SynthWorld(WorldConfig(conflict_fraction=0.9))
    with pytest.raises(R1OmniError, match="size >= 112"):
        SynthWorld(WorldConfig(size=64))
    with pytest.raises(R1OmniError, match="unknown split"):
        SynthWorld().clip("holdout", 0)


def test_written_world_decodes_to_the_in_memory_clips_and_is_reproducible(tmp_path):
    config = WorldConfig(seed=3, sizes={"coldstart": 2, "test": 2, "ood_test": 2})
    manifests = write_world(config, tmp_path / "a", splits=("coldstart", "test", "ood_test"), ablations=True)
    world = SynthWorld(config)
    for split, path in manifests.items():
        for index, row in enumerate(read_manifest(path)):
            sample = world.sample(split, index)
            frames = read_frames(row.video, num_frames=8, size=112)
            assert np.abs(frames.astype(int) - sample.frames.astype(int)).mean() < 8  # H.264 at crf 23
            audio = read_audio(row.audio)
            assert abs(audio.size - sample.audio.size) < 0.1 * 16_000
            n = min(audio.size, sample.audio.size)
            assert np.corrcoef(audio[:n], sample.audio[:n])[0, 1] > 0.95  # AAC keeps the waveform
    assert (tmp_path / "a" / "world.json").is_file()
    assert read_manifest(tmp_path / "a" / "test.audio_only.jsonl")[0].video is None
    write_world(config, tmp_path / "b", splits=("coldstart", "test", "ood_test"), workers=2)
    for split in manifests:
        assert (tmp_path / "a" / f"{split}.jsonl").read_bytes() == (tmp_path / "b" / f"{split}.jsonl").read_bytes()


def test_both_modalities_beat_either_alone_and_the_world_is_not_separable():
    from r1omni.data.synth.ceilings import cue_ceilings

    world = SynthWorld(WorldConfig(seed=11, sizes={"rl": 2500, "test": 600, "ood_test": 600}))
    results = cue_ceilings(world)
    for split in ("test", "ood_test"):
        both = results["both"][split]["uar"]
        assert both > results["face"][split]["uar"] + 0.1 and both > results["voice"][split]["uar"] + 0.1
        assert both < 0.97
        # conflict clips: the face alone is misled by the mask, the voice is not
        assert results["face"][split]["conflict_war"] < results["voice"][split]["conflict_war"]


def test_a_room_shorter_than_one_sample_is_dry():
    # An in-domain RT60 is drawn from [0, 0.15] s; one under 1/16000 s gave an impulse response
    # of no samples, which crashed the world generator (met at world seed 1000).
    from r1omni.data.synth.voice import apply_channel

    voice = np.sin(np.linspace(0, 200, 16_000)).astype(np.float32) * 0.1
    out = apply_channel(voice, 1e-5, None, 35.0, np.random.default_rng(0))
    assert out.shape == voice.shape and np.isfinite(out).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), split=st.sampled_from(["coldstart", "rl", "test", "ood_test"]),
       index=st.integers(0, 10_000), conflict=st.sampled_from([0.0, 0.15, 0.5]),
       intensity=st.sampled_from([(0.0, 0.0), (0.0, 1.0), (0.25, 1.0), (1.0, 1.0)]),
       duration=st.sampled_from([(0.5, 0.5), (2.0, 5.0), (6.0, 8.0)]))
def test_any_seed_and_extreme_settings_render_valid_clips(seed, split, index, conflict, intensity, duration):
    """The generator must hold for every seed, not just the ones the demo uses (seed 7 once drew
    a room too short for an impulse response)."""
    world = SynthWorld(WorldConfig(seed=seed, sizes={split: index + 1}, conflict_fraction=conflict,
                                   intensity=intensity, duration=duration))
    sample = world.sample(split, index)
    assert sample.frames.shape == (8, 112, 112, 3) and sample.frames.dtype == np.uint8
    assert np.isfinite(sample.audio).all() and np.abs(sample.audio).max() <= 1.0
    assert duration[0] * 16_000 - 1 <= sample.audio.size <= duration[1] * 16_000 + 1
    assert sample.row.label in VOCABULARIES["dfew"] and sample.row.rationale and sample.row.caption


@settings(max_examples=200, deadline=None)
@given(rt60=st.floats(0, 2.0), snr=st.floats(-10, 60), seed=st.integers(0, 2**32 - 1),
       band=st.sampled_from([None, (300.0, 3400.0), (80.0, 7900.0)]))
def test_the_room_channel_holds_for_any_drawn_value(rt60, snr, seed, band):
    from r1omni.data.synth.voice import apply_channel

    voice = np.sin(np.linspace(0, 300, 8_000)).astype(np.float32) * 0.1
    out = apply_channel(voice, rt60, band, snr, np.random.default_rng(seed))
    assert out.shape == voice.shape and np.isfinite(out).all()
