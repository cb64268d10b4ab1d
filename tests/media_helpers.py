"""Small media with known content: numbered frames and a pure tone (shared by the tests)."""

from __future__ import annotations

import numpy as np

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
