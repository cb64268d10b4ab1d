from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from r1omni import media
from r1omni.errors import MediaError, MissingStreamError
from r1omni.media import probe, read_audio, read_frames, read_image, segment_midpoints

from media_helpers import FPS, SAMPLE_RATE, TONE_HZ, frame_index


def expected_indices(seconds: float, n: int) -> list[int]:
    """Frame on screen at each segment midpoint of a clip of `seconds` at FPS."""
    return [int(t * FPS) for t in segment_midpoints(0.0, seconds, n)]


@pytest.mark.parametrize("gop", [None, 5, 12])
def test_frames_are_taken_at_segment_midpoints(make_clip, gop):
    clip = make_clip(seconds=4.0, gop=gop)
    frames = read_frames(clip, num_frames=8, size=64)
    assert frames.shape == (8, 64, 64, 3) and frames.dtype == np.uint8
    assert [frame_index(f) for f in frames] == expected_indices(4.0, 8) == [6, 18, 31, 43, 56, 68, 81, 93]


@pytest.mark.parametrize("name", ["clip.mkv", "clip.avi", "clip.mov"])
def test_other_containers(make_clip, name):
    frames = read_frames(make_clip(name, seconds=2.0), num_frames=4, size=32)
    assert [frame_index(f) for f in frames] == expected_indices(2.0, 4)


def test_frame_count_and_size_are_configurable(make_clip):
    clip = make_clip(seconds=2.0, gop=10)
    frames = read_frames(clip, num_frames=3, size=32)
    assert frames.shape == (3, 32, 32, 3)
    assert [frame_index(f) for f in frames] == expected_indices(2.0, 3)


def test_pad_mode_centres_the_frame_on_the_fill_colour(make_clip):
    clip = make_clip(seconds=1.0, width=64, height=32)
    frames = read_frames(clip, num_frames=1, size=None, fill=(10, 200, 30))
    assert frames.shape == (1, 64, 64, 3)
    assert (frames[0, :16] == (10, 200, 30)).all() and (frames[0, 48:] == (10, 200, 30)).all()
    assert not (frames[0, 16:48] == (10, 200, 30)).all(axis=-1).any()


def test_resize_mode_stretches_without_padding(make_clip):
    clip = make_clip(seconds=1.0, width=64, height=32)
    frames = read_frames(clip, num_frames=2, size=48, mode="resize", fill=(10, 200, 30))
    assert frames.shape == (2, 48, 48, 3)
    assert not (frames == (10, 200, 30)).all(axis=-1).any()
    with pytest.raises(ValueError, match="resize mode"):
        read_frames(clip, mode="crop")
    with pytest.raises(ValueError, match="num_frames"):
        read_frames(clip, num_frames=0)


def test_more_frames_than_the_clip_has_repeat_nearest_frames(make_clip):
    clip = make_clip(seconds=0.2)  # 5 frames
    frames = read_frames(clip, num_frames=8, size=32)
    assert [frame_index(f) for f in frames] == expected_indices(0.2, 8)


def test_decoding_skips_groups_of_pictures_without_a_wanted_frame(make_clip, monkeypatch):
    """A 20 s clip with 1 s GOPs: 8 midpoint frames need at most 8 GOPs of packets, and the
    decoder outputs far fewer frames than the clip holds."""
    clip = make_clip(seconds=20.0, gop=FPS)
    fed, output = 0, 0
    original = av.video.stream.VideoStream.decode

    def counting_decode(self, packet=None):
        nonlocal fed, output
        fed += packet is not None and packet.size > 0
        frames = original(self, packet)
        output += len(frames)
        return frames

    monkeypatch.setattr(av.video.stream.VideoStream, "decode", counting_decode)
    frames = read_frames(clip, num_frames=8, size=32)
    assert [frame_index(f) for f in frames] == expected_indices(20.0, 8)
    assert 8 <= output <= fed <= 8 * FPS < 20 * FPS


def test_still_image_is_a_one_frame_video(tmp_path):
    path = tmp_path / "face.png"
    Image.fromarray(np.full((20, 40, 3), 200, np.uint8)).save(path)
    assert read_image(path, size=16).shape == (1, 16, 16, 3)
    frames = read_frames(path, num_frames=8, size=40)
    assert frames.shape == (1, 40, 40, 3)
    assert (frames[0, 10:30] == 200).all()
    info = probe(path)
    assert info.has_video and not info.has_audio and (info.width, info.height) == (40, 20)
    with pytest.raises(MissingStreamError, match="no audio stream"):
        read_audio(path)


def dominant_hz(audio: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1 / rate)[spectrum.argmax()])


def test_audio_of_a_video_is_mono_16k_float(make_clip):
    clip = make_clip(seconds=3.0)
    audio = read_audio(clip)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - 3.0 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE  # AAC adds priming samples
    assert abs(dominant_hz(audio) - TONE_HZ) < 5
    assert 0.4 < np.abs(audio).max() < 0.6


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".m4a"])
def test_audio_files_are_resampled_to_16k(make_audio, suffix):
    audio = read_audio(make_audio(f"tone{suffix}", seconds=2.0, rate=22_050))
    assert abs(audio.size - 2.0 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert abs(dominant_hz(audio) - TONE_HZ) < 5


def test_audio_is_cut_and_padded_to_the_maximum_length(make_audio):
    path = make_audio(seconds=2.0)
    assert read_audio(path, max_seconds=0.5).size == 8_000
    assert read_audio(path, max_seconds=3.0).size == 32_000  # no padding by default
    padded = read_audio(path, max_seconds=3.0, pad=True)
    assert padded.size == 48_000 and not padded[-8_000:].any()
    assert read_audio(path, max_seconds=None).size == 32_000


def test_probe_reports_streams(make_clip, make_audio):
    info = probe(make_clip(seconds=2.0))
    assert info.has_video and info.has_audio
    assert (info.width, info.height, info.fps, info.sample_rate) == (64, 48, FPS, SAMPLE_RATE)
    assert abs(info.duration - 2.0) < 0.1
    silent = probe(make_clip("silent.mp4", seconds=1.0, audio=False))
    assert silent.has_video and not silent.has_audio
    sound = probe(make_audio())
    assert sound.has_audio and not sound.has_video


def test_missing_streams_are_reported(make_clip, make_audio):
    with pytest.raises(MissingStreamError, match="silent.mp4: has no audio stream") as caught:
        read_audio(make_clip("silent.mp4", seconds=1.0, audio=False))
    assert caught.value.kind == "audio"
    with pytest.raises(MissingStreamError, match="has no video stream"):
        read_frames(make_audio())


def test_bad_files_raise_media_error_naming_the_file(tmp_path, make_clip):
    cases = {}
    cases["missing"] = (tmp_path / "nope.mp4", "file not found")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cases["empty"] = (empty, "empty")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    cases["text"] = (text, "not a readable media file")
    clip = make_clip(seconds=2.0)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(Path(clip).read_bytes()[: Path(clip).stat().st_size // 2])
    cases["truncated"] = (truncated, "not a readable media file")  # its index (moov) is lost
    streamable = make_clip("streamable.mp4", seconds=4.0, faststart=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(Path(streamable).read_bytes()[: Path(streamable).stat().st_size // 2])
    cases["cut"] = (cut, "truncated")
    fake_image = tmp_path / "face.jpg"
    fake_image.write_text("not an image")
    cases["image"] = (fake_image, "not a readable image")
    cases["folder"] = (tmp_path, "is a directory")
    for path, cause in cases.values():
        for reader in (read_frames, read_audio, probe):
            if reader is read_audio and path.suffix == ".jpg":
                continue  # an image has no audio at all: MissingStreamError, tested above
            if reader is probe and path.name == "cut.mp4":
                continue  # its header is intact: only decoding finds the cut
            with pytest.raises(MediaError, match=cause) as caught:
                reader(path)
            assert str(path) in str(caught.value)
            assert caught.value.__cause__ is None  # no raw PyAV traceback attached


def test_fit_square_rejects_unknown_modes():
    with pytest.raises(ValueError):
        media.fit_square(Image.new("RGB", (4, 2)), 4, mode="zoom")
    with pytest.raises(ValueError, match="needs a size"):
        media.fit_square(Image.new("RGB", (4, 2)), None, mode="resize")
