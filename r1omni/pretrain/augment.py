"""Generic augmentation for perception pre-training: pictures framed, lit and recorded differently,
voices recorded in other rooms and through other channels.

Large pre-training corpora vary in all of these; a model pre-trained on one camera and one
microphone reads a clip from another badly. Ranges are generic (the kinds of variation
speech-emotion and face-analysis systems train with), not fitted to any test domain.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import butter, fftconvolve, sosfilt
from torch import nn

SAMPLE_RATE = 16_000


def augment_frames(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Frames ``[N, 3, S, S]`` in [-1, 1], each with its own framing (scale 0.75-1.15, aspect ratio
    within ±15% as random-resized crops vary it, rotation up to 8°, shift up to 12%), colour gain
    per channel (±20%), contrast (0.7-1.3), brightness (±0.2) and sensor noise."""
    n = len(pixels)

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return torch.empty(n, *shape).uniform_(low, high, generator=generator)

    scale, aspect, angle = uniform(0.75, 1.15), torch.exp(uniform(-0.15, 0.15)), uniform(-0.14, 0.14)
    sx, sy = scale * aspect.sqrt(), scale / aspect.sqrt()
    theta = torch.stack([torch.stack([angle.cos() / sx, -angle.sin() / sx, uniform(-0.12, 0.12)], 1),
                         torch.stack([angle.sin() / sy, angle.cos() / sy, uniform(-0.12, 0.12)], 1)], 1)  # [N, 2, 3]
    grid = nn.functional.affine_grid(theta, list(pixels.shape), align_corners=False)
    framed = nn.functional.grid_sample(pixels, grid, padding_mode="border", align_corners=False)
    mean = framed.mean((1, 2, 3), keepdim=True)
    lit = (framed - mean) * uniform(0.7, 1.3, 1, 1, 1) + mean
    lit = lit * uniform(0.8, 1.2, 3, 1, 1) + uniform(-0.2, 0.2, 1, 1, 1)
    noise = torch.randn(lit.shape, generator=generator) * uniform(0.0, 0.08, 1, 1, 1)
    return (lit + noise).clamp(-1.0, 1.0)


def augment_audio(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 16 kHz waveform through a random room (half the time; RT60 0.05-0.6 s), a random band
    (half the time; 50-500 Hz to 2.5-7.5 kHz) and background noise (10-40 dB below the clip's level)."""
    out = wave.astype(np.float64)
    if rng.random() < 0.5:
        length = int(rng.uniform(0.05, 0.6) * SAMPLE_RATE)
        impulse = rng.normal(0, 1, length) * np.exp(-6.9 * np.arange(length) / length)  # -60 dB at the end
        impulse[0] = 1.0
        out = fftconvolve(out, impulse / np.sqrt(np.sum(impulse**2)))[: out.size]
    if rng.random() < 0.5:
        band = (rng.uniform(50, 500), rng.uniform(2500, 7500))
        out = sosfilt(butter(4, band, "bandpass", fs=SAMPLE_RATE, output="sos"), out)
    level = np.sqrt(np.mean(out**2)) if out.size else 0.0
    out = out + rng.normal(0, 1, out.size) * level * 10 ** (-rng.uniform(10, 40) / 20)
    return np.tanh(out).astype(np.float32)
