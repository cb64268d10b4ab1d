"""How well the true cue values alone predict the label: the world's difficulty, measured.

A logistic regression on the clips' recorded cues (face: AU apex intensities; voice: prosody
values; both) is trained on the ``rl`` split and scored on ``test`` and ``ood_test``. Models
that see pixels and waveforms have to recover these cues first, so these are ceilings of a kind.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from r1omni.data.manifest import ClipRow
from r1omni.data.synth.cues import PROSODY
from r1omni.data.synth.face import AU_ORDER
from r1omni.data.synth.world import SynthWorld

FEATURES = {
    "face": lambda row: [row.cues["aus"][au] for au in AU_ORDER],
    "voice": lambda row: [row.cues["prosody"][name] for name in PROSODY],
}
FEATURES["both"] = lambda row: FEATURES["face"](row) + FEATURES["voice"](row)


def _matrix(rows: list[ClipRow], modality: str) -> np.ndarray:
    return np.array([FEATURES[modality](row) for row in rows], dtype=np.float64)


def cue_ceilings(world: SynthWorld, train: str = "rl", tests=("test", "ood_test")) -> dict:
    """``{modality: {test_split: {"uar", "war", "conflict_war"}}}`` for face, voice and both."""
    train_rows = world.rows(train)
    labels = [row.label for row in train_rows]
    test_rows = {split: world.rows(split) for split in tests}
    results = {}
    for modality in FEATURES:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(_matrix(train_rows, modality), labels)
        results[modality] = {}
        for split, rows in test_rows.items():
            truth = [row.label for row in rows]
            predicted = list(model.predict(_matrix(rows, modality)))
            conflict = [i for i, row in enumerate(rows) if row.cues["conflict"]]
            # Every prediction is one of the true classes, so balanced accuracy is UAR and accuracy WAR.
            results[modality][split] = {
                "uar": balanced_accuracy_score(truth, predicted), "war": accuracy_score(truth, predicted),
                "conflict_war": accuracy_score([truth[i] for i in conflict], [predicted[i] for i in conflict])
                if conflict else None,
            }
    return results
