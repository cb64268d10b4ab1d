"""Per-corpus standardisation of frozen tower features, between a tower and its projector.

Pretrained encoders shift with the recording conditions: the same emotion recorded in another
studio lands elsewhere in Whisper's feature space. Standardising each feature dimension by the
statistics of the corpus at hand (its unlabelled clips) removes much of that shift; for the
projector's sake the training corpus's statistics are fitted before training and saved with the
model, and `r1omni eval --standardize corpus` refits them on the test corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from r1omni.errors import R1OmniError

MIN_STD = 1e-5  # a dimension constant over the corpus is centred, not blown up


class FeatureStandardizer(nn.Module):
    """``(features - mean) / std`` per dimension once fitted; the identity before. The
    statistics are buffers, saved in the model's weights."""

    def __init__(self, width: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.register_buffer("clips", torch.zeros((), dtype=torch.long))  # how many clips the statistics came from

    @property
    def fitted(self) -> bool:
        return bool(self.clips > 0)

    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor, clips: int) -> None:
        with torch.no_grad():
            self.mean.copy_(mean)
            self.std.copy_(std.clamp_min(MIN_STD))
            self.clips.fill_(clips)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [T, D] -> [T, D]
        if not self.fitted:
            return features
        return (features - self.mean.to(features.dtype)) / self.std.to(features.dtype)


class RunningMoments:
    """Mean and standard deviation of feature rows, accumulated clip by clip in float64."""

    def __init__(self):
        self.total = self.squares = None
        self.rows = 0
        self.clips = 0

    def add(self, features: torch.Tensor) -> None:  # [T, D]
        values = features.detach().to(torch.float64).reshape(-1, features.shape[-1])
        if self.total is None:
            self.total, self.squares = values.new_zeros(values.shape[1]), values.new_zeros(values.shape[1])
        self.total += values.sum(0)
        self.squares += (values * values).sum(0)
        self.rows += len(values)
        self.clips += 1

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.total / self.rows
        variance = (self.squares / self.rows - mean * mean).clamp_min(0)
        return mean.float(), variance.sqrt().float()


def fit_standardizers(policy, clips: Iterable, progress: Callable[[int], None] | None = None,
                      modalities: Iterable[str] | None = None) -> dict[str, int]:
    """Fit the policy's feature standardizers (those of `modalities`, default all) on `clips`
    (`ClipMedia`, unlabelled): every frame of every clip weighs the same. Returns the number of
    clips per modality fitted; a modality none of the clips has keeps its old statistics, and
    none at all is an error."""
    standardizers = {m: s for m, s in policy.feature_standardizers().items() if modalities is None or m in modalities}
    moments = {m: RunningMoments() for m in standardizers}
    with torch.no_grad():
        for done, media in enumerate(clips, 1):
            for modality, running in moments.items():
                if modality in media.present():
                    running.add(policy.tower_features(modality, media))
            if progress is not None:
                progress(done)
    fitted = {}
    for modality, running in moments.items():
        if running.clips:
            mean, std = running.result()
            standardizers[modality].set_statistics(mean, std, running.clips)
            fitted[modality] = running.clips
    if standardizers and not fitted:
        raise R1OmniError(f"no clip had {' or '.join(standardizers)} to fit the feature statistics on")
    return fitted
