"""The classic speech-emotion baseline: eGeMAPS functionals and a logistic regression.

Both standardisations of the recipe: ``train`` (every feature scaled by the training clips'
statistics, the usual one) and ``corpus`` (each side scaled by its own unlabelled statistics,
which removes a recording set-up's offsets when the test speakers or corpus differ).
"""

from __future__ import annotations

import numpy as np

from r1omni.data.acoustics import Measured
from r1omni.errors import R1OmniError
from r1omni.eval.metrics import uar, war

STANDARDIZATIONS = ("train", "corpus")


def _scaled(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    mean, std = reference.mean(0), reference.std(0)
    return (values - mean) / np.where(std > 0, std, 1.0)


def egemaps_lr(train: Measured, test: Measured, standardize: str = "train", seed: int = 0) -> dict:
    """Fit on `train`, predict `test`: {"uar", "war", "n", "predictions": {id: label}}."""
    from sklearn.linear_model import LogisticRegression

    if standardize not in STANDARDIZATIONS:
        raise R1OmniError(f"standardize must be one of {', '.join(STANDARDIZATIONS)}, got {standardize!r}")
    if not len(train.rows) or not len(test.rows):
        raise R1OmniError("the baseline needs measured clips on both sides")
    x_train = _scaled(train.values, train.values)
    x_test = _scaled(test.values, train.values if standardize == "train" else test.values)
    labels = [r.label for r in train.rows]
    model = LogisticRegression(max_iter=5000, random_state=seed).fit(x_train, labels)
    predicted = list(model.predict(x_test))
    truth = [r.label for r in test.rows]
    return {"uar": uar(truth, predicted), "war": war(truth, predicted), "n": len(truth),
            "predictions": {r.id: p for r, p in zip(test.rows, predicted)}}


def leave_one_speaker_out(measured: Measured, standardize: str = "train") -> dict:
    """`egemaps_lr` tested on each speaker in turn, trained on the others (every row needs its
    speaker): {"uar", "war", "n"} over all rows' predictions."""
    speakers = sorted({str(r.speaker) for r in measured.rows})
    if any(r.speaker is None for r in measured.rows) or len(speakers) < 2:
        raise R1OmniError("leave-one-speaker-out needs a speaker in every row and at least two speakers")
    predicted = {}
    for speaker in speakers:
        held = np.array([r.speaker == speaker for r in measured.rows])
        parts = [Measured(measured.names, [r for r, h in zip(measured.rows, held) if h == side],
                          measured.values[held == side], {}) for side in (False, True)]
        predicted.update(egemaps_lr(*parts, standardize)["predictions"])
    truth = [r.label for r in measured.rows]
    guesses = [predicted[r.id] for r in measured.rows]
    return {"uar": uar(truth, guesses), "war": war(truth, guesses), "n": len(truth)}
