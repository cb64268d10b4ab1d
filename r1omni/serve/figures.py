"""Pictures for the page: the sound's spectrogram as the model heard it."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from r1omni.media import SAMPLE_RATE


def log_spectrogram(audio: np.ndarray, rate: int = SAMPLE_RATE, window_s: float = 0.025, hop_s: float = 0.010
                    ) -> np.ndarray:
    """Power in decibels ``[frequencies, frames]`` of a mono signal ``[T]`` (Hann windows)."""
    window, hop = int(window_s * rate), int(hop_s * rate)
    audio = np.pad(audio.astype(np.float32), (0, max(0, window - audio.size)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, window)[::hop]  # [frames, window]
    power = np.abs(np.fft.rfft(frames * np.hanning(window), axis=-1)) ** 2  # [frames, window // 2 + 1]
    return 10 * np.log10(power.T + 1e-10)


def spectrogram_image(audio: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The spectrogram drawn with time and frequency axes, as an RGB image ``[H, W, 3]``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decibels = log_spectrogram(audio, rate)
    fig, ax = plt.subplots(figsize=(6, 2.4))
    top = decibels.max()
    ax.imshow(decibels, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
              extent=(0, audio.size / rate, 0, rate / 2000))
    ax.set_xlabel("seconds")
    ax.set_ylabel("kHz")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return np.asarray(Image.open(buffer).convert("RGB"))
