"""HumanOmni's video projector, `AllInOneSmall`, and what the official code does to its output.

Three branches read the same SigLIP features ``[T, 196, C]`` of a clip's frames:

- ``video`` and ``body`` (same layout, own weights): a RegStage of two RegNet bottlenecks per
  frame at 14x14, a Conv3d sampler over time and space (to 7x7; T+1 steps, the last dropped),
  a second RegStage, then a two-layer MLP readout: ``[T*49, H]``;
- ``face``: a two-layer MLP per token ``[T, 196, H]``, pooled bilinearly to 7x7 per frame.

A BERT-CLS gate on the instruction mixes them (r1omni.models.humanomni.policy). The RegStage is
timm's (regnet `Bottleneck`: 1x1 conv, depthwise 3x3, squeeze-excite, 1x1 conv, residual), written
here with timm's parameter names and numerics (channels-last LayerNorm, eps 1e-5) because timm
imports torchvision, which does not load beside the CPU torch build.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

NORM_EPS = 1e-5  # timm maps the RegStage's LayerNorm2d to LayerNormAct2d, whose eps is 1e-5


class LayerNormAct2d(nn.LayerNorm):
    """LayerNorm over the channels of each pixel of ``[N, C, H, W]``, then SiLU (or nothing)."""

    def __init__(self, channels: int, act: bool = True):
        super().__init__(channels, eps=NORM_EPS)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return self.act(x.permute(0, 3, 1, 2))


class ConvNormAct(nn.Module):
    """Convolution without bias, then `LayerNormAct2d` (keys ``conv.*``, ``bn.*``)."""

    def __init__(self, in_chs: int, out_chs: int, kernel: int, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel, padding=kernel // 2, groups=groups, bias=False)
        self.bn = LayerNormAct2d(out_chs, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SqueezeExcite(nn.Module):
    """``x * sigmoid(fc2(SiLU(fc1(mean over H, W))))``."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(F.silu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(scale)


class Bottleneck(nn.Module):
    """timm's regnet bottleneck at bottle ratio 1, group size 1 (depthwise), SE ratio 0.25 of the
    input width, stride 1; a 1x1 conv shortcut only when the width changes."""

    def __init__(self, in_chs: int, out_chs: int):
        super().__init__()
        self.conv1 = ConvNormAct(in_chs, out_chs, 1)
        self.conv2 = ConvNormAct(out_chs, out_chs, 3, groups=out_chs)
        self.se = SqueezeExcite(out_chs, int(round(in_chs * 0.25)))
        self.conv3 = ConvNormAct(out_chs, out_chs, 1, act=False)
        self.downsample = ConvNormAct(in_chs, out_chs, 1, act=False) if in_chs != out_chs else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.conv3(self.se(self.conv2(self.conv1(x)))) + self.downsample(x))


class RegStage(nn.Module):
    """`depth` bottlenecks named ``b1``, ``b2``, …; the first changes the width."""

    def __init__(self, depth: int, in_chs: int, out_chs: int):
        super().__init__()
        for i in range(depth):
            self.add_module(f"b{i + 1}", Bottleneck(in_chs if i == 0 else out_chs, out_chs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x


def mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    """Linear, GELU, Linear (keys ``0.*``, ``2.*``): the readouts, the face branch, the audio projector."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


class AllInOneSmall(nn.Module):
    """SigLIP features ``[T, P, C]`` (P = 14x14 patches) -> the three branches before gating."""

    BRANCHES = ("video", "body")

    def __init__(self, in_dim: int, hidden: int, depth: int = 2):
        super().__init__()
        for branch in self.BRANCHES:
            self.add_module(f"s1_{branch}", RegStage(depth, in_dim, hidden))
            # [1, H, T, 14, 14] -> [1, H, T + 1, 7, 7]: time padded by one step on both sides
            self.add_module(f"sampler_{branch}", nn.Sequential(
                nn.Conv3d(hidden, hidden, kernel_size=(2, 2, 2), stride=(1, 2, 2), padding=(1, 0, 0)), nn.SiLU()))
            self.add_module(f"s2_{branch}", RegStage(depth, hidden, hidden))
            self.add_module(f"readout_{branch}", mlp(hidden, hidden))
        self.mlp_2xgelu_face = mlp(in_dim, hidden)

    def conv_branch(self, features: torch.Tensor, branch: str) -> torch.Tensor:
        """``[T, P, C]`` -> ``[T * P/4, H]`` in (t, h, w) order."""
        frames, patches, channels = features.shape
        side = int(patches**0.5)
        x = features.transpose(1, 2).reshape(frames, channels, side, side)  # [T, C, S, S]
        x = getattr(self, f"s1_{branch}")(x)  # [T, H, S, S]
        x = getattr(self, f"sampler_{branch}")(x.transpose(0, 1)[None])[0, :, :-1]  # [H, T, S/2, S/2]
        x = getattr(self, f"s2_{branch}")(x.transpose(0, 1))  # [T, H, S/2, S/2]
        x = x.flatten(2).transpose(1, 2).reshape(-1, x.shape[1])  # [T * S/2 * S/2, H]
        return getattr(self, f"readout_{branch}")(x)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The branches stacked: ``[3, T * P/4, H]`` (video, body, face pooled to 7x7 a frame)."""
        face = pool_faces(self.mlp_2xgelu_face(features))  # [T, P/4, H]
        return torch.stack([self.conv_branch(features, "video"), self.conv_branch(features, "body"),
                            face.flatten(0, 1)])


def pool_faces(face: torch.Tensor) -> torch.Tensor:
    """``[T, P, H]`` -> ``[T, ceil(S/2)², H]``: each frame's S x S grid resized bilinearly
    (align_corners=False), the official `get_2dPool`."""
    frames, patches, hidden = face.shape
    side = int(patches**0.5)
    grid = face.view(frames, side, side, hidden).permute(0, 3, 1, 2)
    half = -(-side // 2)
    pooled = F.interpolate(grid, size=[half, half], mode="bilinear")
    return pooled.permute(0, 2, 3, 1).reshape(frames, half * half, hidden)


def slow_fast(tokens: torch.Tensor, frames: int) -> torch.Tensor:
    """The HumanOmni repository's feature compressor (`SFDynamicCompressor`; R1-Omni's code has it
    commented out): fused tokens ``[T * S², H]`` -> every frame average-pooled 2x2 (S=7: 3x3), then
    frames 1, 5, 9, … whole (frame 0 when T = 1): 8 frames give 72 + 98 = 170 tokens."""
    hidden = tokens.shape[-1]
    side = int((tokens.shape[0] // frames) ** 0.5)
    grid = tokens.view(frames, side, side, hidden)
    fast = F.avg_pool2d(grid.permute(0, 3, 1, 2), 2, 2).flatten(2).transpose(1, 2).reshape(-1, hidden)
    index = torch.arange(1, frames, 4) if frames > 1 else torch.tensor([0])
    return torch.cat([fast, grid[index].reshape(-1, hidden)])
