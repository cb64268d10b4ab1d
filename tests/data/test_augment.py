"""`r1omni data augment`: copies of speech recorded and transmitted differently."""

from pathlib import Path

import numpy as np
import pytest

from r1omni.cli import main
from r1omni.data import ClipRow, read_manifest, write_manifest
from r1omni.data.augment import SPEECH_AUGMENTATIONS, augment_rows, augment_speech, parse_kinds
from r1omni.errors import R1OmniError
from r1omni.media import read_audio, write_audio

RATE = 16_000


def _tone(seconds=1.0, hz=220.0):
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture
def clips(tmp_path):
    """Three rows, two with sound and one whose file is missing."""
    rows = []
    for i, hz in enumerate((180.0, 260.0)):
        path = write_audio(tmp_path / "src" / f"c{i}.wav", _tone(hz=hz))
        rows.append(ClipRow(f"spk1/c{i}", "sad", "emodb", audio=str(path), speaker="1", rationale="A low voice.",
                            meta={"text": "a01"}))
    rows.append(ClipRow("gone", "angry", "emodb", audio=str(tmp_path / "src" / "gone.wav"), speaker="2"))
    return rows


def test_each_kind_changes_the_sound_in_its_own_way():
    wave, rng = _tone(), np.random.default_rng(0)
    louder_or_softer = augment_speech(wave, "loudness", rng)
    assert louder_or_softer.shape == wave.shape and not np.allclose(np.abs(louder_or_softer).max(), 0.3, atol=1e-3)
    assert np.allclose(louder_or_softer / np.abs(louder_or_softer).max(), wave / 0.3, atol=1e-4)  # only the gain
    phone = augment_speech(wave, "codec", rng)
    assert phone.shape == wave.shape and np.corrcoef(phone, wave)[0, 1] > 0.9
    hiss = (0.1 * np.random.default_rng(1).normal(size=RATE)).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(augment_speech(hiss, "codec", rng)))  # [8001]: one bin per Hz
    assert spectrum[4500:].mean() < spectrum[:3500].mean() / 30  # a telephone keeps nothing above 4 kHz
    faster_or_slower = augment_speech(wave, "speed", rng)
    assert abs(faster_or_slower.size - wave.size) > 0.01 * wave.size
    room = augment_speech(wave, "channel", rng)
    assert room.shape == wave.shape and np.isfinite(room).all() and not np.allclose(room, wave)
    with pytest.raises(R1OmniError, match="unknown augmentation 'echo'"):
        augment_speech(wave, "echo", rng)


def test_kinds_parse_and_name_the_known_ones():
    assert parse_kinds("channel, codec,channel") == ("channel", "codec")
    for bad in ("", "channel,echo"):
        with pytest.raises(R1OmniError, match=", ".join(SPEECH_AUGMENTATIONS)):
            parse_kinds(bad)


def test_copies_follow_their_clip_and_fail_per_row(clips, tmp_path):
    result = augment_rows(clips, ("codec", "loudness"), copies=2, folder=tmp_path / "aug", seed=3)
    assert [r.id for r in result.rows][:3] == ["spk1/c0", f"spk1/c0~0-{result.rows[1].meta['augmentation']}",
                                               f"spk1/c0~1-{result.rows[2].meta['augmentation']}"]
    assert len(result.rows) == 7 and list(result.failures) == ["gone"] and "gone.wav" in result.failures["gone"]
    for copy in result.rows[1:3] + result.rows[4:6]:
        source = next(r for r in clips if r.id == copy.meta["augmented_from"])
        assert (copy.label, copy.dataset, copy.speaker, copy.meta["text"]) == ("sad", "emodb", "1", "a01")
        assert copy.rationale is None  # the original's rationale describes the original's sound
        assert copy.meta["augmentation"] in ("codec", "loudness") and "/" not in copy.audio.rsplit("aug/", 1)[1]
        assert read_audio(copy.audio).size == read_audio(source.audio).size
    again = augment_rows(clips[:1], ("codec", "loudness"), copies=2, folder=tmp_path / "again", seed=3)
    assert [r.id for r in again.rows] == [r.id for r in result.rows[:3]]  # a row's draws depend on its id only
    assert np.array_equal(read_audio(again.rows[1].audio), read_audio(result.rows[1].audio))
    with pytest.raises(R1OmniError, match="at least 1"):
        augment_rows(clips, ("codec",), copies=0, folder=tmp_path / "none")


def test_cli_writes_rows_and_audio_and_never_overwrites(clips, tmp_path, capsys):
    write_manifest(clips[:2], tmp_path / "train.jsonl")
    args = ["data", "augment", "--manifest", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "aug.jsonl")]
    assert main(args) == 0
    rows = read_manifest(tmp_path / "aug.jsonl")
    assert len(rows) == 4 and [Path(r.audio).parent for r in rows[1::2]] == [(tmp_path / "aug-audio").resolve()] * 2
    assert {r.meta["augmentation"] for r in rows[1::2]} <= {"channel", "codec", "loudness"}
    assert "wrote 4 rows (2 copies)" in capsys.readouterr().out
    assert main(args) == 2 and "exists" in capsys.readouterr().err
    write_manifest(clips, tmp_path / "with-missing.jsonl")
    assert main(["data", "augment", "--manifest", str(tmp_path / "with-missing.jsonl"), "--kinds", "speed",
                 "--out", str(tmp_path / "partial.jsonl")]) == 1
    assert len(read_manifest(tmp_path / "partial.jsonl")) == 5
    assert "1 of 3 rows have no copies" in capsys.readouterr().err
