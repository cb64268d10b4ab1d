"""Acoustic rationales (r1omni data describe-voice) and the speaker split."""

import json

import numpy as np
import pytest

from r1omni.claims import check_claims, measurement_of
from r1omni.cli import main
from r1omni.data import ClipRow, read_manifest
from r1omni.data.acoustics import (
    ATTRIBUTES,
    bounds_of_rows,
    describe,
    explain_rows,
    measure_rows,
    tercile_bounds,
    tercile_levels,
    with_measured_levels,
)
from r1omni.data.split import split_by_speaker
from r1omni.errors import ManifestError
from r1omni.labels import emotions_named
from r1omni.media import write_audio

RATE = 16_000


def _voice(path, hz, amplitude, seconds=1.5):
    """A vowel-like harmonic tone with a slow vibrato: openSMILE hears it as voiced."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = hz * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    signal = sum(np.sin(k * phase) / k for k in range(1, 6))
    return write_audio(path, (amplitude * signal / 3).astype(np.float32), RATE)


@pytest.fixture
def voices(tmp_path):
    """Six clips: pitch rises from 110 to 330 Hz while loudness falls."""
    specs = [(110, 0.8), (150, 0.4), (190, 0.2), (230, 0.1), (280, 0.05), (330, 0.025)]
    return [ClipRow(id=f"v{i}", label="neutral", dataset="test", audio=str(_voice(tmp_path / f"v{i}.wav", hz, amp)),
                    speaker=str(i % 2)) for i, (hz, amp) in enumerate(specs)]


def test_measured_pitch_and_loudness_follow_the_signal(voices):
    measured = measure_rows(voices)
    assert not measured.failures and len(measured.rows) == 6 and measured.values.shape == (6, 88)
    pitch = measured.column(ATTRIBUTES["pitch"])
    loudness = measured.column(ATTRIBUTES["loudness"])
    assert np.all(np.diff(pitch) > 0) and np.all(np.diff(loudness) < 0)


def test_rationales_state_measured_levels_and_name_no_emotion(voices, tmp_path):
    rows = explain_rows(measure_rows(voices))
    assert rows[0].rationale.startswith("The voice is low-pitched and loud")
    assert rows[-1].rationale.startswith("The voice is high-pitched and quiet")
    assert all(r.caption == r.rationale and not emotions_named(r.rationale) for r in rows)
    assert rows[0].meta["acoustics"]["pitch"]["level"] == 0 and rows[-1].meta["acoustics"]["pitch"]["level"] == 2


def test_every_level_combination_reads_without_an_emotion_word_and_reads_back():
    for levels in np.ndindex(3, 3, 3, 3):
        stated = dict(zip(ATTRIBUTES, map(int, levels)))
        text = describe(stated)
        assert not emotions_named(text), text
        acoustics = {k: {"level": v} for k, v in stated.items()}
        measured = measurement_of(meta={"acoustics": acoustics}, modalities=["audio"])
        verdicts = check_claims(text, measured)
        assert {v.claim.name: v.claim.level for v in verdicts} == stated and all(v.holds for v in verdicts), text


def test_rows_record_the_terciles_their_levels_are_relative_to(voices):
    rows = explain_rows(measure_rows(voices))
    bounds = bounds_of_rows(rows)
    assert bounds == {name: tuple(rows[0].meta["acoustics"][name]["bounds"]) for name in ATTRIBUTES}
    for row in rows:  # the levels recomputed from a row's own value and bounds are its levels
        for name, value in row.meta["acoustics"].items():
            assert tercile_levels(np.array([value["value"]]), bounds[name])[0] == value["level"]
    assert bounds_of_rows(voices) is None  # rows never described
    with pytest.raises(ManifestError, match="has no measured pitch terciles"):
        bounds_of_rows(rows[:2] + voices[2:])
    face = ClipRow("face", "happy", "fer2013", video="face.jpg")  # no sound: nothing to measure
    assert bounds_of_rows([face, *rows]) == bounds
    other = explain_rows(measure_rows(voices[:3]))
    with pytest.raises(ManifestError, match="different terciles"):
        bounds_of_rows(rows + other)


def test_levels_of_new_clips_use_the_reference_bounds(voices):
    measured = measure_rows(voices)
    bounds = tercile_bounds(measured)
    rows, failures = with_measured_levels(voices, bounds)
    assert not failures and [r.meta["acoustics"]["pitch"]["level"] for r in rows] == [0, 0, 1, 1, 2, 2]
    shifted = {**bounds, "pitch": (1e9, 2e9)}  # every clip below the lower bound
    rows, _ = with_measured_levels(voices, shifted)
    assert all(r.meta["acoustics"]["pitch"]["level"] == 0 for r in rows)


def test_tercile_levels_split_in_thirds():
    assert tercile_levels(np.arange(9.0)).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_describe_voice_command_reports_unreadable_rows_and_keeps_the_rest(voices, tmp_path, capsys):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    rows = voices + [ClipRow(id="bad", label="sad", dataset="test", audio=str(broken))]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r.to_json()) + "\n" for r in rows))
    code = main(["data", "describe-voice", "--manifest", str(manifest), "--out", str(tmp_path / "out.jsonl")])
    assert code == 1
    assert "1 of 7 rows left out" in capsys.readouterr().err
    written = read_manifest(tmp_path / "out.jsonl")
    assert [r.id for r in written] == [r.id for r in voices] and all(r.rationale for r in written)


def test_speaker_split_holds_out_whole_speakers(voices, tmp_path, capsys):
    train, test = split_by_speaker(voices, ["1"])
    assert {r.speaker for r in test} == {"1"} and {r.speaker for r in train} == {"0"}
    with pytest.raises(ManifestError, match=r"speakers \['7'\] have no rows"):
        split_by_speaker(voices, ["7"])
    with pytest.raises(ManifestError, match="nothing is left to train on"):
        split_by_speaker(voices, ["0", "1"])
    with pytest.raises(ManifestError, match="name no speaker"):
        split_by_speaker([ClipRow(id="x", label="sad", dataset="t", audio="a.wav")], ["1"])
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r.to_json()) + "\n" for r in voices))
    main(["data", "split", "--manifest", str(manifest), "--test-speakers", "1", "--out", str(tmp_path / "split")])
    assert len(read_manifest(tmp_path / "split" / "test.jsonl")) == 3
    assert len(read_manifest(tmp_path / "split" / "train.jsonl")) == 3
    main(["data", "split", "--manifest", str(manifest), "--test-speakers", "1", "--names", "coldstart,rl",
          "--out", str(tmp_path / "split")])
    assert {r.speaker for r in read_manifest(tmp_path / "split" / "rl.jsonl")} == {"1"}
    assert main(["data", "split", "--manifest", str(manifest), "--test-speakers", "1", "--names", "rl",
                 "--out", str(tmp_path / "split")]) == 2
    assert "--names takes two different names" in capsys.readouterr().err


def test_describe_voice_takes_another_manifests_terciles(voices, tmp_path, capsys):
    reference = tmp_path / "ref.jsonl"
    reference.write_text("".join(json.dumps(r.to_json()) + "\n" for r in explain_rows(measure_rows(voices))))
    manifest = tmp_path / "new.jsonl"
    manifest.write_text("".join(json.dumps(r.to_json()) + "\n" for r in voices[:2]))
    assert main(["data", "describe-voice", "--manifest", str(manifest), "--bounds-from", str(reference),
                 "--out", str(tmp_path / "out.jsonl")]) == 0
    written = read_manifest(tmp_path / "out.jsonl")
    assert bounds_of_rows(written) == bounds_of_rows(read_manifest(reference))
    assert [r.meta["acoustics"]["pitch"]["level"] for r in written] == [0, 0]  # not thirds of two clips
    assert main(["data", "describe-voice", "--manifest", str(manifest), "--bounds-from", str(manifest),
                 "--out", str(tmp_path / "out2.jsonl")]) == 2
    assert "carry no measured levels" in capsys.readouterr().err
