"""UAR, WAR, per-class recall and confusion matrices, and reports of them.

Predictions are canonical labels or None. A prediction that is None (unparsable) or outside the
class list counts as wrong and never adds a class: UAR is the mean recall over the classes
present in the ground truth, as the emotion-recognition literature reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from r1omni.labels import ALL_LABELS, VOCABULARIES, emotions_named
from r1omni.prompts import extract_answer, extract_think
from r1omni.rewards import format_reward


def _check_lengths(labels: Sequence, predictions: Sequence) -> None:
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    if not labels:
        raise ValueError("no labels to score")


def per_class_recall(labels: Sequence[str], predictions: Sequence[str | None]) -> dict[str, float]:
    """Recall of each class present in `labels`, in order of first appearance."""
    _check_lengths(labels, predictions)
    hits: dict[str, list[int]] = {}
    for gold, pred in zip(labels, predictions):
        counts = hits.setdefault(gold, [0, 0])
        counts[0] += gold == pred
        counts[1] += 1
    return {label: right / total for label, (right, total) in hits.items()}


def uar(labels: Sequence[str], predictions: Sequence[str | None]) -> float:
    """Unweighted average recall: the mean of the per-class recalls of the true classes."""
    return float(np.mean(list(per_class_recall(labels, predictions).values())))


def war(labels: Sequence[str], predictions: Sequence[str | None]) -> float:
    """Weighted average recall, which is plain accuracy."""
    _check_lengths(labels, predictions)
    return sum(g == p for g, p in zip(labels, predictions)) / len(labels)


def confusion_matrix(
    labels: Sequence[str], predictions: Sequence[str | None], classes: Sequence[str]
) -> np.ndarray:
    """Counts ``[len(classes), len(classes) + 1]``: rows true class, columns predicted class,
    the last column every prediction outside `classes` (unparsable included)."""
    _check_lengths(labels, predictions)
    position = {c: i for i, c in enumerate(classes)}
    missing = sorted(set(labels) - set(position))
    if missing:
        raise ValueError(f"true labels {missing} are not among the classes {list(classes)}")
    matrix = np.zeros((len(classes), len(classes) + 1), dtype=np.int64)
    for gold, pred in zip(labels, predictions):
        matrix[position[gold], position.get(pred, len(classes))] += 1
    return matrix


def class_order(labels: Sequence[str], datasets: Sequence[str | None] = ()) -> list[str]:
    """The classes to tabulate: a shared dataset's vocabulary order, else sorted true labels."""
    present = set(labels)
    names = {d for d in datasets if d}
    if len(names) == 1 and (name := names.pop()) in VOCABULARIES:
        vocab = VOCABULARIES[name]
        if present <= set(vocab):
            return list(vocab)
    return sorted(present)


@dataclass
class Scores:
    """Everything `r1omni eval` reports, fractions in [0, 1]."""

    uar: float
    war: float
    per_class: dict[str, float]
    n: int
    format_rate: float | None  # None when only bare predictions were given
    unparsable_rate: float
    classes: list[str]
    confusion: np.ndarray
    faithfulness: dict | None = None  # mean cue precision/recall/F1 when rows carry cues
    conflict_war: float | None = None  # accuracy on clips whose face masks the felt emotion (cues.conflict)
    conflict_n: int = 0
    mismatch_rate: float | None = None  # answers whose reasoning names other emotions but not the answer
    left_out: dict[str, str] = field(default_factory=dict)  # rows not scored: id -> why (unreadable media)
    dropped_labels: dict[str, int] = field(default_factory=dict)  # rows not scored: label the model lacks -> count

    def to_json(self) -> dict:
        return {
            "uar": self.uar,
            "war": self.war,
            "per_class": self.per_class,
            "n": self.n,
            "format_rate": self.format_rate,
            "unparsable_rate": self.unparsable_rate,
            "classes": self.classes,
            "confusion": self.confusion.tolist(),
            "cue_faithfulness": self.faithfulness,
            "conflict_war": self.conflict_war,
            "conflict_n": self.conflict_n,
            "reasoning_answer_mismatch_rate": self.mismatch_rate,
            "left_out": self.left_out,
            "dropped_labels": self.dropped_labels,
        }


def faithfulness_summary(completions: Sequence[str], cues: Sequence[dict | None]) -> dict | None:
    """Mean cue precision, recall and F1 of the reasoning (the ``<think>`` text, or the whole
    completion without one) over the rows that carry true cues; None when none do."""
    from r1omni.data.synth.faithfulness import cue_faithfulness

    results = [cue_faithfulness(extract_think(c) or c, truth) for c, truth in zip(completions, cues) if truth]
    if not results:
        return None

    def mean(key: str) -> float | None:
        values = [r[key] for r in results if r[key] is not None]
        return float(np.mean(values)) if values else None

    return {"precision": mean("precision"), "recall": mean("recall"), "f1": mean("f1"), "n": len(results),
            "no_claims_rate": sum(r["precision"] is None for r in results) / len(results)}


def reasoning_mismatch_rate(completions: Sequence[str]) -> float | None:
    """Among completions with reasoning and an answer, the share whose reasoning names one or more
    emotions but not the one answered (e.g. reasons to "fear", answers "disgust"); None when no
    completion has both."""
    checked = mismatched = 0
    for text in completions:
        think, answer = extract_think(text), extract_answer(text, lenient=True)
        if think is None or answer is None:
            continue
        checked += 1
        named = emotions_named(think)
        mismatched += bool(named) and answer not in named
    return mismatched / checked if checked else None


def score(
    labels: Sequence[str],
    predictions: Sequence[str | None],
    completions: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    cues: Sequence[dict | None] | None = None,
) -> Scores:
    """All metrics for one prediction set; `completions` add the format pass rate, and with
    `cues` (the clips' true cues) the faithfulness of the reasoning."""
    classes = list(classes) if classes is not None else class_order(labels)
    unparsable = sum(p is None or p not in ALL_LABELS for p in predictions)
    recall = per_class_recall(labels, predictions)
    conflict = [i for i, c in enumerate(cues or ()) if c and c.get("conflict")]
    return Scores(
        uar=uar(labels, predictions),
        war=war(labels, predictions),
        per_class={c: recall[c] for c in classes if c in recall},
        n=len(labels),
        format_rate=float(np.mean(format_reward(completions))) if completions else None,
        unparsable_rate=unparsable / len(labels),
        classes=classes,
        confusion=confusion_matrix(labels, predictions, classes),
        faithfulness=faithfulness_summary(completions, cues) if completions and cues else None,
        conflict_war=war([labels[i] for i in conflict], [predictions[i] for i in conflict]) if conflict else None,
        conflict_n=len(conflict),
        mismatch_rate=reasoning_mismatch_rate(completions) if completions else None,
    )


# ----------------------------------------------------------------------------- intervals

BOOTSTRAP_SAMPLES = 2000


def _resampled_scores(labels: Sequence[str], predictions: Sequence[str | None], draws: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """UAR and WAR ``[B]`` of each bootstrap resample (rows of `draws` ``[B, n]``: clip indices)."""
    classes = sorted(set(labels))
    label_ids = np.array([classes.index(label) for label in labels])  # [n]
    correct = np.array([g == p for g, p in zip(labels, predictions)], dtype=np.float64)  # [n]
    drawn_labels, drawn_correct = label_ids[draws], correct[draws]  # [B, n]
    totals = np.stack([(drawn_labels == k).sum(1) for k in range(len(classes))], 1)  # [B, K]
    hits = np.stack([((drawn_labels == k) * drawn_correct).sum(1) for k in range(len(classes))], 1)  # [B, K]
    present = totals > 0  # a class a resample missed does not count, as UAR is over the classes present
    recall = np.where(present, hits / np.maximum(totals, 1), 0.0)
    return recall.sum(1) / present.sum(1), drawn_correct.mean(1)


def bootstrap_intervals(labels: Sequence[str], predictions: Sequence[str | None], level: float = 0.95,
                        samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict[str, list[float]]:
    """Percentile bootstrap intervals ``{"uar": [low, high], "war": [low, high]}``, clips resampled
    with replacement."""
    _check_lengths(labels, predictions)
    draws = np.random.default_rng(seed).integers(0, len(labels), (samples, len(labels)))
    uars, wars = _resampled_scores(labels, predictions, draws)
    tail = 100 * (1 - level) / 2
    return {name: [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))]
            for name, v in (("uar", uars), ("war", wars))}


def paired_difference(labels: Sequence[str], first: Sequence[str | None], second: Sequence[str | None],
                      level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict[str, dict]:
    """`first` minus `second` on the same clips, with a paired bootstrap interval (both resampled
    with the same clips): ``{"uar": {"difference", "interval"}, "war": …}``."""
    _check_lengths(labels, first)
    _check_lengths(labels, second)
    draws = np.random.default_rng(seed).integers(0, len(labels), (samples, len(labels)))
    (uar_a, war_a), (uar_b, war_b) = _resampled_scores(labels, first, draws), _resampled_scores(labels, second, draws)
    tail = 100 * (1 - level) / 2
    out = {}
    for name, a, b, point in (("uar", uar_a, uar_b, uar(labels, first) - uar(labels, second)),
                              ("war", war_a, war_b, war(labels, first) - war(labels, second))):
        out[name] = {"difference": float(point),
                     "interval": [float(np.percentile(a - b, tail)), float(np.percentile(a - b, 100 - tail))]}
    return out
