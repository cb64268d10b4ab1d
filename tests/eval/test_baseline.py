"""eGeMAPS + logistic regression, with the training corpus's or each corpus's own standardisation."""

import numpy as np
import pytest

from r1omni.data import ClipRow
from r1omni.data.acoustics import Measured
from r1omni.errors import R1OmniError
from r1omni.eval.baseline import egemaps_lr


def _measured(values, labels, prefix):
    rows = [ClipRow(id=f"{prefix}{i}", label=label, dataset="t") for i, label in enumerate(labels)]
    return Measured([f"f{j}" for j in range(values.shape[1])], rows, values, {})


def _corpus(rng, offset, n=60):
    """Two classes apart along feature 0, recorded with a set-up that adds `offset` to every feature."""
    labels = ["angry", "sad"] * (n // 2)
    values = rng.normal(size=(n, 4)) + offset
    values[:, 0] += np.where(np.array(labels) == "angry", 3.0, -3.0)
    return values, labels


def test_separable_classes_are_found():
    rng = np.random.default_rng(0)
    train, test = _measured(*_corpus(rng, 0.0), "a"), _measured(*_corpus(rng, 0.0), "b")
    scores = egemaps_lr(train, test)
    assert scores["uar"] == 1.0 and scores["n"] == 60 and scores["predictions"]["b0"] == "angry"


def test_each_corpus_standardised_by_its_own_statistics_removes_a_recording_offset():
    rng = np.random.default_rng(1)
    train, shifted = _measured(*_corpus(rng, 0.0), "a"), _measured(*_corpus(rng, 8.0), "b")
    assert egemaps_lr(train, shifted, "train")["uar"] == 0.5  # everything lands on one side
    assert egemaps_lr(train, shifted, "corpus")["uar"] > 0.95


def test_unknown_standardisation_is_refused():
    rng = np.random.default_rng(2)
    train = _measured(*_corpus(rng, 0.0), "a")
    with pytest.raises(R1OmniError, match="standardize must be one of train, corpus"):
        egemaps_lr(train, train, "speaker")


def test_leave_one_speaker_out_predicts_every_row_from_the_other_speakers():
    from r1omni.eval.baseline import leave_one_speaker_out

    rng = np.random.default_rng(3)
    values, labels = _corpus(rng, 0.0, n=60)
    rows = [ClipRow(id=f"r{i}", label=label, dataset="t", speaker=str(i % 3)) for i, label in enumerate(labels)]
    scores = leave_one_speaker_out(Measured(["f0", "f1", "f2", "f3"], rows, values, {}))
    assert scores["n"] == 60 and scores["uar"] == 1.0
    with pytest.raises(R1OmniError, match="at least two speakers"):
        leave_one_speaker_out(Measured(["f0", "f1", "f2", "f3"], [ClipRow(id="x", label="sad", dataset="t")],
                                       values[:1], {}))
