"""Hostile files: each way the decoders used to escape `MediaError`, blow up or read another
file, and the caps that bound what one file may cost."""

import os
from pathlib import Path

import numpy as np
import pytest
from hostile_media import crafted, mp3_with_cover_art, raw_mp3

from r1omni.errors import MediaError, MissingStreamError
from r1omni.media import probe, read_audio, read_frames


@pytest.fixture(scope="module")
def crafted_files(tmp_path_factory):
    return crafted(tmp_path_factory.mktemp("crafted"))


@pytest.mark.parametrize("case", ["unknown_codec", "one_hz", "nan_audio", "inf_audio", "huge_png", "bomb_png",
                                  "huge_video", "header_only"])
def test_crafted_files_raise_media_error_naming_file_and_cause(crafted_files, case):
    path, cause = crafted_files[case]
    reader = read_frames if path.suffix in (".png", ".mp4") else lambda p: read_audio(p, max_seconds=None)
    with pytest.raises(MediaError, match=cause) as caught:
        reader(path)
    assert str(path) in str(caught.value) and caught.value.__cause__ is None


def test_unknown_codec_is_a_media_error_in_probe_too(crafted_files):
    with pytest.raises(MediaError, match="no decoder"):
        probe(crafted_files["unknown_codec"][0])


def test_invalid_utf8_metadata_does_not_stop_decoding(tmp_path):
    from hostile_media import pcm16, wav_bytes

    tag = b"INFO" + b"INAM" + (6).to_bytes(4, "little") + b"\xff\xfe\xc3(\x00\x00"
    path = tmp_path / "tagged.wav"
    path.write_bytes(wav_bytes(pcm16(), extra=b"LIST" + len(tag).to_bytes(4, "little") + tag))
    assert probe(path).has_audio and read_audio(path).shape == (16_000,)


def test_concatenated_streams_with_different_rates_decode_whole(tmp_path):
    first, second = raw_mp3(tmp_path / "a.mp3", 16_000), raw_mp3(tmp_path / "b.mp3", 44_100)
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    audio = read_audio(joined, max_seconds=None)
    assert 1.8 * 16_000 < audio.size < 2.3 * 16_000  # both seconds, at 16 kHz


def test_cover_art_is_not_a_video_stream(tmp_path):
    path = mp3_with_cover_art(tmp_path / "song.mp3")
    assert not probe(path).has_video
    assert read_audio(path).size == 16_000
    with pytest.raises(MissingStreamError, match="no video stream"):
        read_frames(path)


def test_file_named_like_a_protocol_is_read_as_that_file(make_clip, tmp_path, monkeypatch):
    """FFmpeg reads ``concat:clip.mp4`` as the concat protocol over clip.mp4; r1omni must read the
    file of that name (here not media at all)."""
    make_clip("clip.mp4", seconds=1.0)
    monkeypatch.chdir(tmp_path)
    decoy = Path("concat:clip.mp4")
    decoy.write_text("not a video\n" * 20)
    for reader in (read_frames, read_audio, probe):
        with pytest.raises(MediaError, match="not a readable media file"):
            reader(decoy)


def test_overlong_file_name_is_a_media_error(tmp_path):
    path = tmp_path / ("x" * 300 + ".mp4")
    with pytest.raises(MediaError, match="cannot be read"):
        read_frames(path)


def test_whole_track_audio_is_capped(tmp_path, monkeypatch):
    from r1omni.media import decode

    monkeypatch.setattr(decode, "MAX_AUDIO_SECONDS", 0.5)
    path = tmp_path / "long.wav"
    from hostile_media import pcm16, wav_bytes

    path.write_bytes(wav_bytes(pcm16(2.0)))
    assert read_audio(path, max_seconds=None).size == 8_000
    assert read_audio(path, max_seconds=1.0, pad=True).size == 8_000  # the cap wins over a longer ask


def test_file_size_cap(tmp_path, monkeypatch, make_audio):
    from r1omni.media import decode

    path = make_audio()
    monkeypatch.setattr(decode, "MAX_FILE_BYTES", os.path.getsize(path) - 1)
    with pytest.raises(MediaError, match="over the .* cap"):
        read_audio(path)


def test_finite_audio_still_decodes(make_audio):
    assert np.isfinite(read_audio(make_audio())).all()
