"""Per-corpus standardisation of frozen tower features, between a tower and its projector.

Pretrained encoders shift with the recording conditions: the same emotion recorded in another
studio lands elsewhere in Whisper's feature space. Standardising each feature dimension by the
statistics of the corpus at hand (its unlabelled clips) removes much of that shift; for the
projector's sake the training corpus's statistics are fitted before training and saved with the
model, and `r1omni eval --standardize corpus` refits them on the test corpus.

A standardizer can also hold named statistics groups (a corpus, a speaker) beside its own: a clip
whose `ClipMedia.statistics` names a group is standardised by that group's statistics. Training on
several corpora fits one group per corpus (`data.standardize_by: corpus`), and `r1omni eval
--standardize corpus|speaker` one per corpus or speaker of the scored rows. Groups are fitted
where they are used and not saved: the saved statistics are those of all the training clips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from r1omni.errors import R1OmniError

MIN_STD = 1e-5  # a dimension constant over the corpus is centred, not blown up
GROUPINGS = ("corpus", "speaker")


class FeatureStandardizer(nn.Module):
    """``(features - mean) / std`` per dimension once fitted; the identity before. The
    statistics are buffers, saved in the model's weights."""

    def __init__(self, width: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.register_buffer("clips", torch.zeros((), dtype=torch.long))  # how many clips the statistics came from
        self.groups: dict[str, tuple[torch.Tensor, torch.Tensor, int]] = {}  # name -> (mean, std, clips)

    @property
    def fitted(self) -> bool:
        return bool(self.clips > 0)

    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor, clips: int) -> None:
        with torch.no_grad():
            self.mean.copy_(mean)
            self.std.copy_(std.clamp_min(MIN_STD))
            self.clips.fill_(clips)

    def set_group(self, name: str, mean: torch.Tensor, std: torch.Tensor, clips: int) -> None:
        self.groups[name] = (mean.to(self.mean.device), std.clamp_min(MIN_STD).to(self.std.device), clips)

    def forward(self, features: torch.Tensor, group: str | None = None) -> torch.Tensor:  # [T, D] -> [T, D]
        """Standardised by `group`'s statistics when it names a fitted group, else by the model's."""
        if group in self.groups:
            mean, std, _ = self.groups[group]
        elif self.fitted:
            mean, std = self.mean, self.std
        else:
            return features
        return (features - mean.to(features.dtype)) / std.to(features.dtype)


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
                      modalities: Iterable[str] | None = None, groups: bool = False,
                      own: Iterable[str] | None = None) -> dict[str, int]:
    """Fit the policy's feature standardizers (those of `modalities`, default all) on `clips`
    (`ClipMedia`, unlabelled): every frame of every clip weighs the same. The standardizers of
    `own` (default: all of them) get their own statistics over all the clips; with `groups`, each
    clip's `ClipMedia.statistics` group is fitted besides (replacing the groups fitted before).
    Returns the number of clips per modality fitted; a modality none of the clips has keeps its
    old statistics, and none at all is an error."""
    standardizers = {m: s for m, s in policy.feature_standardizers().items() if modalities is None or m in modalities}
    own = set(standardizers if own is None else own)
    moments = {m: RunningMoments() for m in standardizers}
    by_group: dict[str, dict[str, RunningMoments]] = {}
    with torch.no_grad():
        for done, media in enumerate(clips, 1):
            for modality, running in moments.items():
                if modality in media.present():
                    features = policy.tower_features(modality, media)  # [T, D]
                    running.add(features)
                    if groups and media.statistics is not None:
                        by_group.setdefault(modality, {}).setdefault(media.statistics, RunningMoments()).add(features)
            if progress is not None:
                progress(done)
    fitted = {}
    for modality, running in moments.items():
        if running.clips:
            if modality in own:
                standardizers[modality].set_statistics(*running.result(), running.clips)
            if groups:
                standardizers[modality].groups = {}
                for name, group in by_group.get(modality, {}).items():
                    standardizers[modality].set_group(name, *group.result(), group.clips)
            fitted[modality] = running.clips
    if standardizers and not fitted:
        raise R1OmniError(f"no clip had {' or '.join(standardizers)} to fit the feature statistics on")
    return fitted


def statistics_group(row, by: str | None) -> str | None:
    """The statistics group of a manifest row: its corpus (``by="corpus"``), its speaker within
    its corpus (``"speaker"``; a row without a speaker counts as its corpus), or none (None)."""
    if by is None:
        return None
    if by not in GROUPINGS:
        raise R1OmniError(f"feature statistics are grouped by corpus or speaker, not {by!r}")
    corpus = row.dataset or "unnamed corpus"
    return f"{corpus} speaker {row.speaker}" if by == "speaker" and row.speaker else corpus


def statistics_used(policy, media) -> dict[str, str]:
    """Modality -> which statistics standardised this clip's features, in words: the named group's,
    or the model's own (how many clips they came from)."""
    used = {}
    for modality, standardizer in policy.feature_standardizers().items():
        if modality not in media.present():
            continue
        if media.statistics in standardizer.groups:
            used[modality] = f"{media.statistics} ({standardizer.groups[media.statistics][2]} clips)"
        elif standardizer.fitted:
            corpora = (policy.config.task or {}).get("feature_statistics")  # "emodb 408, ravdess 480"
            used[modality] = f"the model's training clips ({corpora or f'{int(standardizer.clips)} clips'})"
    return used
