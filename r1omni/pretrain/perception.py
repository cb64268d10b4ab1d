"""Perception pre-training: the towers learn to see and hear a clip's cues before any emotion training.

Rows of the synthetic world record each clip's true cues: facial action-unit intensities
(``cues.aus``) and prosody values (``cues.prosody``). Linear heads on the towers' pooled outputs
regress them (standardised), so every dimension of supervision the world has reaches the towers,
not only the few words of a caption. No emotion label is used. Clips are decoded once and kept
in memory; each step draws clips, a few frames of each, and augments them (`augment`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from r1omni.data.augment import augment_audio
from r1omni.data.manifest import ClipRow
from r1omni.errors import R1OmniError
from r1omni.models import ClipMedia, OmniPolicy
from r1omni.pretrain.augment import augment_frames
from r1omni.progress import StageTimer


@dataclass
class PerceptionSettings:
    steps: int = 2500
    clips_per_step: int = 32
    frames_per_clip: int = 4  # drawn from the inner frames, where the expression is at its apex
    lr: float = 2e-3  # one-cycle schedule, 10% warm-up
    weight_decay: float = 1e-4
    augment: bool = True
    seed: int = 0


class CueTargets:
    """Standardised regression targets ``[N, K]`` per modality from the rows' recorded cues."""

    FIELDS = {"video": "aus", "audio": "prosody"}

    def __init__(self, rows: list[ClipRow]):
        missing = [r.id for r in rows if not r.cues or any(f not in r.cues for f in self.FIELDS.values())]
        if missing:
            raise R1OmniError(f"perception pre-training needs rows with cues.aus and cues.prosody "
                              f"(the synthetic world's); {len(missing)} lack them, e.g. {missing[:3]}")
        self.names = {m: sorted(rows[0].cues[f]) for m, f in self.FIELDS.items()}
        raw = {m: np.array([[r.cues[f][k] for k in self.names[m]] for r in rows], np.float32)
               for m, f in self.FIELDS.items()}
        self.mean = {m: v.mean(0) for m, v in raw.items()}
        self.std = {m: v.std(0) + 1e-6 for m, v in raw.items()}
        self.values = {m: (v - self.mean[m]) / self.std[m] for m, v in raw.items()}

    def of(self, rows: list[ClipRow]) -> dict[str, np.ndarray]:
        return {m: (np.array([[r.cues[f][k] for k in self.names[m]] for r in rows], np.float32) - self.mean[m])
                / self.std[m] for m, f in self.FIELDS.items()}


def _pooled(policy: OmniPolicy, modality: str, inputs: list[torch.Tensor]) -> torch.Tensor:
    """Each clip's tower tokens averaged: ``[clips, width]``."""
    tower = policy.encoders()[modality]
    if modality == "video":  # all clips' frames in one pass: [clips, frames, 3, S, S]
        stacked = torch.stack(inputs)
        tokens = tower(stacked.flatten(0, 1))  # [clips * frames, width]
        return tokens.view(len(inputs), -1, tokens.shape[-1]).mean(1)
    return torch.stack([tower(mel).mean(0) for mel in inputs])


def decode_all(policy: OmniPolicy, rows: list[ClipRow], progress: Callable[[int, int], None] | None = None
               ) -> list[ClipMedia]:
    media = []
    for done, row in enumerate(rows, 1):
        clip = policy.read_clip(row.video, row.audio)
        if clip.frames is None or clip.audio is None:
            raise R1OmniError(f"{row.id}: perception pre-training needs both a picture and a sound")
        media.append(clip)
        if progress is not None:
            progress(done, len(rows))
    return media


def pretrain_towers(policy: OmniPolicy, rows: list[ClipRow], media: list[ClipMedia], settings: PerceptionSettings,
                    progress: Callable[[int, dict], None] | None = None) -> dict:
    """Train `policy`'s video and audio towers on the rows' cues (`media`: the rows' decoded clips,
    `decode_all`); returns the heads' final losses and the seconds taken. The towers' weights
    change in place."""
    towers = policy.encoders()
    targets = CueTargets(rows)
    heads = nn.ModuleDict({m: nn.Linear(towers[m].out_dim, len(targets.names[m])) for m in targets.FIELDS})
    params = [p for m in targets.FIELDS for p in [*towers[m].parameters(), *heads[m].parameters()]]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.lr, total_steps=settings.steps, pct_start=0.1)
    rng = np.random.default_rng(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    frames = media[0].frames.shape[0]
    inner = list(range(1, frames - 1)) if frames > 2 else list(range(frames))
    timer, losses = StageTimer(), {}
    policy.train()
    with timer("training"):
        for step in range(1, settings.steps + 1):
            chosen = rng.choice(len(rows), min(settings.clips_per_step, len(rows)), replace=False)
            picked = sorted(rng.choice(inner, min(settings.frames_per_clip, len(inner)), replace=False))
            video = [towers["video"].preprocess(media[i].frames[picked]) for i in chosen]
            if settings.augment:
                frames_in = torch.stack(video)  # [clips, frames, C, H, W]
                video = list(augment_frames(frames_in.flatten(0, 1), generator).view(frames_in.shape))
            audio = [towers["audio"].preprocess(augment_audio(media[i].audio, rng) if settings.augment
                                                else media[i].audio) for i in chosen]
            inputs = {"video": video, "audio": audio}
            total = 0.0
            for modality in targets.FIELDS:
                predicted = heads[modality](_pooled(policy, modality, inputs[modality]))
                loss = ((predicted - torch.from_numpy(targets.values[modality][chosen])) ** 2).mean()
                losses[modality] = float(loss.detach())
                total = total + loss
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            schedule.step()
            if progress is not None:
                progress(step, dict(losses))
    policy.weights_changed()
    return {"final_loss": losses, "seconds": round(timer.totals["training"], 1), "settings": asdict(settings),
            "targets": targets.names}


@torch.no_grad()
def pooled_features(policy: OmniPolicy, media: list[ClipMedia]) -> dict[str, np.ndarray]:
    """Each clip's tower outputs averaged over frames and over time: ``{modality: [clips, width]}``."""
    towers = policy.encoders()
    policy.eval()
    out = {}
    for modality in ("video", "audio"):
        inputs = [towers[modality].preprocess(m.get(modality)) for m in media]
        out[modality] = torch.cat([_pooled(policy, modality, inputs[i : i + 64])
                                   for i in range(0, len(inputs), 64)]).numpy()
    return out
