"""UAR, WAR, per-class recall and confusion matrices, and reports of them.

Predictions are canonical labels or None. A prediction that is None (unparsable) or outside the
class list counts as wrong and never adds a class: UAR is the mean recall over the classes
present in the ground truth, as the emotion-recognition literature reports it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from r1omni.claims import LEVEL_WORDS, Measurement, claim_report, measurement_of
from r1omni.labels import ALL_LABELS, VOCABULARIES, emotions_named
from r1omni.prompts import extract_answer, extract_think
from r1omni.rewards import format_reward

BOOTSTRAP_SAMPLES = 2000


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
    faithfulness: dict | None = None  # the reasoning's claims against measured cues or levels (faithfulness_summary)
    conflict_war: float | None = None  # accuracy on clips whose face masks the felt emotion (cues.conflict)
    conflict_n: int = 0
    mismatch_rate: float | None = None  # answers whose reasoning names other emotions but not the answer
    left_out: dict[str, str] = field(default_factory=dict)  # rows not scored: id -> why (unreadable media)
    dropped_labels: dict[str, int] = field(default_factory=dict)  # rows not scored: label the model lacks -> count
    faces: dict | None = None  # how often the face was found (r1omni.media.face_rate), for a model that reads faces
    intervals: dict[str, list[float]] | None = None  # 95% bootstrap intervals over clips: {"uar": [lo, hi], "war": …}
    # The same scores within each corpus and each speaker of the rows (group_scores):
    # {"corpus": {name: {...}}, "speaker": {name: {...}}}
    groups: dict[str, dict] | None = None
    statistics: str = "model"  # whose feature statistics standardised the clips (`r1omni eval --standardize`)

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
            "faces": self.faces,
            "uar_ci": (self.intervals or {}).get("uar"),
            "war_ci": (self.intervals or {}).get("war"),
            "by_corpus": (self.groups or {}).get("corpus"),
            "by_speaker": (self.groups or {}).get("speaker"),
            "statistics": self.statistics,
        }


def faithfulness_summary(completions: Sequence[str], measured: Sequence[Measurement | None],
                         samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict | None:
    """How the reasoning's claims (the ``<think>`` text, or the whole completion without one)
    hold against each clip's measurement (`r1omni.claims`), over the rows that carry one; None
    when none do.

    `precision` / `recall` / `f1`: means over clips of each clip's share of its judged claims
    that hold (clips without claims left out, counted in `no_claims_rate`) and of the true claims
    it could have made that it made, with 95% bootstrap intervals over clips. `wrong_modality_rate`:
    the share of all judged claims that say a cue of the other modality, or of one the model was
    not shown. `per_modality` and `per_cue` pool claims: precision (claims of it that hold) and
    recall (clips where it was measured and said). Measured voice levels add `per_attribute`: the
    share of clips stating the attribute and the agreement of stated levels with the measured ones,
    with intervals."""
    reports = [(claim_report(extract_think(c) or c, m), m) for c, m in zip(completions, measured) if m is not None]
    if not reports:
        return None
    precision = np.array([np.nan if r["precision"] is None else r["precision"] for r, _ in reports])  # [n]
    recall = np.array([r["recall"] for r, _ in reports])  # [n]
    verdicts = [[v for v in r["verdicts"] if v.holds is not None] for r, _ in reports]
    judged = sum(len(v) for v in verdicts)
    wrong = sum(v.why in ("wrong modality", "not shown") for vs in verdicts for v in vs)
    draws = np.random.default_rng(seed).integers(0, len(reports), (samples, len(reports)))

    def interval(values: np.ndarray) -> list[float] | None:
        if np.all(np.isnan(values)):
            return None
        with warnings.catch_warnings():  # a resample may draw only clips without claims: no precision
            warnings.simplefilter("ignore", RuntimeWarning)
            resampled = np.nanmean(values[draws], axis=1)  # [B]
        return [float(np.nanpercentile(resampled, 2.5)), float(np.nanpercentile(resampled, 97.5))]

    summary = {"n": len(reports), "no_claims_rate": float(np.mean(np.isnan(precision))),
               "precision": None if np.all(np.isnan(precision)) else float(np.nanmean(precision)),
               "recall": float(recall.mean()), "precision_ci": interval(precision), "recall_ci": interval(recall),
               "claims": judged, "wrong_modality_rate": wrong / judged if judged else None,
               "per_modality": _pooled(reports, lambda v: v.claim.modality, lambda m: [
                   modality for modality, cues in m.cues.items() for _ in cues] + ["voice"] * len(m.levels)),
               "per_cue": _pooled(reports, lambda v: v.claim.name if v.claim.level is None else None,
                                  lambda m: [c for cues in m.cues.values() for c in cues])}
    summary["f1"] = _f1(summary["precision"], summary["recall"])
    if any(m.levels for _, m in reports):
        summary["per_attribute"] = _attribute_agreement(reports, draws)
    return summary


def _f1(precision: float | None, recall: float | None) -> float:
    return 2 * precision * recall / (precision + recall) if precision and recall else 0.0


def _pooled(reports: list, group_of, measured_of) -> dict:
    """Per group of claims (a modality, a cue): claims judged and the share that held
    (precision), true claims there were to make and the share made (recall). `measured_of(m)`
    lists a measurement's true claims by group, one entry each."""
    stats: dict[str, list[int]] = {}  # group -> [claims, held, to make]
    for report, measured in reports:
        for group in measured_of(measured):
            stats.setdefault(group, [0, 0, 0])[2] += 1
        for verdict in report["verdicts"]:
            group = group_of(verdict)
            if group is not None and verdict.holds is not None:
                entry = stats.setdefault(group, [0, 0, 0])
                entry[0] += 1
                entry[1] += verdict.holds
    return {group: {"claims": claims, "precision": held / claims if claims else None, "measured": to_make,
                    "recall": min(held, to_make) / to_make if to_make else None}
            for group, (claims, held, to_make) in sorted(stats.items())}


def _attribute_agreement(reports: list, draws: np.ndarray) -> dict:
    """Per measured voice attribute: the share of clips whose reasoning states it, and of the
    stated levels the share equal to the measured one, with a 95% bootstrap interval."""
    result = {}
    for name in LEVEL_WORDS:
        rows = [(r, m) for r, m in reports if name in m.levels]
        if not rows:
            continue
        held = np.array([sum(v.holds is True for v in r["verdicts"]
                             if v.claim.name == name and v.claim.level is not None)
                         for r, _ in reports], dtype=float)  # [n]
        stated = np.array([sum(v.holds is not None for v in r["verdicts"]
                               if v.claim.name == name and v.claim.level is not None) for r, _ in reports], dtype=float)
        total = stated.sum()
        resampled = held[draws].sum(1) / np.maximum(stated[draws].sum(1), 1)  # [B]
        result[name] = {"stated_rate": float(np.mean(stated > 0)), "stated": int(total),
                        "agreement": float(held.sum() / total) if total else None,
                        "agreement_ci": [float(np.percentile(resampled, 2.5)), float(np.percentile(resampled, 97.5))]
                        if total else None}
    return result


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
    measured: Sequence[Measurement | None] | None = None,
) -> Scores:
    """All metrics for one prediction set; `completions` add the format pass rate, `cues` (the
    synthetic world's) the conflict clips' accuracy, and with `measured` (each clip's
    measurement; default: its `cues`, both modalities shown) the faithfulness of the reasoning."""
    classes = list(classes) if classes is not None else class_order(labels)
    unparsable = sum(p is None or p not in ALL_LABELS for p in predictions)
    recall = per_class_recall(labels, predictions)
    conflict = [i for i, c in enumerate(cues or ()) if c and c.get("conflict")]
    if measured is None and cues:
        measured = [measurement_of(c) for c in cues]
    return Scores(
        uar=uar(labels, predictions),
        war=war(labels, predictions),
        per_class={c: recall[c] for c in classes if c in recall},
        n=len(labels),
        format_rate=float(np.mean(format_reward(completions))) if completions else None,
        unparsable_rate=unparsable / len(labels),
        classes=classes,
        confusion=confusion_matrix(labels, predictions, classes),
        faithfulness=faithfulness_summary(completions, measured) if completions and measured else None,
        conflict_war=war([labels[i] for i in conflict], [predictions[i] for i in conflict]) if conflict else None,
        conflict_n=len(conflict),
        mismatch_rate=reasoning_mismatch_rate(completions) if completions else None,
    )


# ----------------------------------------------------------------------------- intervals


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


def group_scores(labels: Sequence[str], predictions: Sequence[str | None],
                 groups: Sequence[str]) -> dict[str, dict]:
    """UAR and WAR within each group (a corpus, a speaker), each with its 95% bootstrap
    interval over the group's clips: ``{group: {"n", "uar", "war", "uar_ci", "classes"}}``. UAR
    is over the classes the group has, so groups with other classes are not comparable by it."""
    _check_lengths(labels, predictions)
    _check_lengths(labels, groups)
    out = {}
    for group in sorted(set(groups)):
        picked = [i for i, g in enumerate(groups) if g == group]
        mine, guessed = [labels[i] for i in picked], [predictions[i] for i in picked]
        out[group] = {"n": len(picked), "uar": uar(mine, guessed), "war": war(mine, guessed),
                      "uar_ci": bootstrap_intervals(mine, guessed)["uar"], "classes": len(set(mine))}
    return out


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
