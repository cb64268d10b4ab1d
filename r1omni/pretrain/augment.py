"""Generic augmentation for perception pre-training: pictures framed, lit and recorded differently
(voices recorded in other rooms and through other channels: `r1omni.data.augment`).

Large pre-training corpora vary in all of these; a model pre-trained on one camera and one
microphone reads a clip from another badly. Ranges are generic (the kinds of variation
speech-emotion and face-analysis systems train with), not fitted to any test domain.
"""

from __future__ import annotations

import torch
from torch import nn


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
