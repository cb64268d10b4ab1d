"""Train r1omni's own face tower (`towers.FaceNet`) on labelled face images: `r1omni pretrain-face`.

Cross-entropy over the expression classes (label smoothing 0.1, class weights inverse to the
class counts, capped at 4, so that FER-2013's 436 disgust faces count), AdamW with a one-cycle
schedule, batches of 64 with horizontal flips, shifts of up to 4 px and brightness/contrast
jitter of 10%. The epoch with the best validation UAR is kept. Saved with `towers.save_tower` as a
folder the smol-omni preset reads (`tower.json`, `tower.safetensors`, and `training.json`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from r1omni.data.manifest import ClipRow
from r1omni.errors import ConfigError, R1OmniError
from r1omni.eval.metrics import uar as unweighted_average_recall
from r1omni.media import read_frames
from r1omni.models.towers import FaceNet
from r1omni.progress import StageTimer


def face_arrays(rows: list[ClipRow], progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Each row's image (or a video's middle frame) as the tower reads it: uint8 ``[N, 48, 48, 3]``."""
    faces = []
    for i, row in enumerate(rows, 1):
        if not row.video:
            raise R1OmniError(f"{row.id}: has no picture (no 'video' field) to train a face tower on")
        faces.append(read_frames(row.video, num_frames=1, size=FaceNet.SIDE)[0])
        if progress is not None:
            progress(i)
    return np.stack(faces)


def _augment(faces: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    # [B, 1, 48, 48] in [-1, 1]: flip half, shift by up to 4 px, jitter brightness and contrast
    flip = torch.rand(len(faces), generator=rng) < 0.5
    faces = torch.where(flip[:, None, None, None], faces.flip(-1), faces)
    padded = nn.functional.pad(faces, (4, 4, 4, 4), mode="replicate")
    dy, dx = torch.randint(0, 9, (2,), generator=rng).tolist()
    faces = padded[..., dy : dy + FaceNet.SIDE, dx : dx + FaceNet.SIDE]
    scale = 1 + 0.2 * (torch.rand(len(faces), 1, 1, 1, generator=rng) - 0.5)
    shift = 0.2 * (torch.rand(len(faces), 1, 1, 1, generator=rng) - 0.5)
    return faces * scale + shift


@torch.no_grad()
def expression_predictions(tower: FaceNet, faces: torch.Tensor, batch: int = 512) -> np.ndarray:
    tower.eval()
    return torch.cat([tower.expression_logits(faces[i : i + batch]).argmax(1)
                      for i in range(0, len(faces), batch)]).numpy()


def train_face_tower(train: np.ndarray, labels: list[str], val: np.ndarray, val_labels: list[str],
                     classes: tuple[str, ...], epochs: int = 25, seed: int = 0, width: int = 48,
                     equalize: bool = True, say: Callable[[str], None] = print) -> tuple[FaceNet, dict]:
    """A `FaceNet` trained on `train` (uint8 ``[N, S, S, 3]`` faces) and the epoch record; the
    weights of the epoch with the best UAR on `val` are returned."""
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ConfigError(f"labels {unknown} are not among the tower's classes {list(classes)}")
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    tower = FaceNet({"width": width, "classes": len(classes), "labels": list(classes), "equalize": equalize})
    x, x_val = tower.preprocess(train), tower.preprocess(val)  # [N, 1, 48, 48]
    y = torch.tensor([classes.index(label) for label in labels])
    counts = torch.bincount(y, minlength=len(classes)).float().clamp(min=1)
    loss_fn = nn.CrossEntropyLoss(weight=(counts.sum() / counts / len(classes)).clamp(max=4.0), label_smoothing=0.1)
    batches = len(x) // 64
    if batches == 0:
        raise ConfigError(f"{len(x)} training faces: at least 64 are needed")
    optimizer = torch.optim.AdamW(tower.parameters(), 1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=epochs * batches)
    record, best, best_state = [], -1.0, None
    timer = StageTimer()  # the epochs' seconds so far, in the record
    for epoch in range(epochs):
        with timer("epochs"):
            tower.train()
            order = torch.randperm(len(x), generator=rng)
            for b in range(batches):
                take = order[b * 64 : (b + 1) * 64]
                loss = loss_fn(tower.expression_logits(_augment(x[take], rng)), y[take])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
            predicted = [classes[i] for i in expression_predictions(tower, x_val)]
            uar = unweighted_average_recall(val_labels, predicted)
        record.append({"epoch": epoch + 1, "val_uar": round(uar, 4), "loss": round(loss.item(), 4),
                       "seconds": round(timer.totals["epochs"], 1)})
        say(f"epoch {epoch + 1}/{epochs}: validation UAR {uar:.1%} ({record[-1]['seconds']:.0f} s)")
        if uar > best:
            best, best_state = uar, {k: v.clone() for k, v in tower.state_dict().items()}
    tower.load_state_dict(best_state)
    tower.eval().forget_fingerprint()
    return tower, {"epochs": record, "best_val_uar": round(best, 4), "classes": list(classes), "train_faces": len(x),
                   "val_faces": len(x_val), "seed": seed}
