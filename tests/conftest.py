"""Shared fixtures: small media files written with PyAV whose content is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from r1omni.media_writer import write_audio, write_video

FPS = 25
TONE_HZ = 440.0
SAMPLE_RATE = 16_000


def index_frame(i: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A grey frame whose top half encodes i % 32 and bottom half i // 32 (steps of 8 survive
    H.264 and YUV conversion)."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[: height // 2] = 8 * (i % 32)
    frame[height // 2 :] = 8 * (i // 32)
    return frame


def frame_index(image: np.ndarray) -> int:
    """Read back `index_frame`'s number from a decoded frame (any size, padded or not)."""
    rows = np.flatnonzero(np.abs(image.astype(int) - 127).sum(axis=(1, 2)) > 0)  # skip pad rows
    top, bottom = rows.min(), rows.max() + 1
    middle = (top + bottom) // 2
    quarter = (bottom - top) // 4
    high = image[top + quarter // 2 : middle - quarter // 2, :, 0].mean()
    low = image[middle + quarter // 2 : bottom - quarter // 2, :, 0].mean()
    return int(round(high / 8)) + 32 * int(round(low / 8))


def tone(seconds: float, hz: float = TONE_HZ, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture
def make_clip(tmp_path):
    """make_clip(name, seconds, audio, gop, width, height, faststart) -> Path of an H.264+AAC mp4."""

    def make(name="clip.mp4", seconds=4.0, audio=True, gop=None, width=64, height=48, faststart=False):
        frames = (index_frame(i, height, width) for i in range(int(seconds * FPS)))
        sound = tone(seconds) if audio else None
        return write_video(tmp_path / name, frames, fps=FPS, audio=sound, sample_rate=SAMPLE_RATE,
                           gop=gop, faststart=faststart)

    return make


@pytest.fixture
def make_audio(tmp_path):
    def make(name="tone.wav", seconds=2.0, rate=SAMPLE_RATE, hz=TONE_HZ):
        return write_audio(tmp_path / name, tone(seconds, hz, rate), rate)

    return make
