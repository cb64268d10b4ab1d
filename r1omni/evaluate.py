"""UAR, WAR, per-class recall and confusion matrices, and reports of them.

Predictions are canonical labels or None. A prediction that is None (unparsable) or outside the
class list counts as wrong and never adds a class: UAR is the mean recall over the classes
present in the ground truth, as the emotion-recognition literature reports it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from r1omni.data.manifest import iter_jsonl
from r1omni.errors import LabelError, ManifestError
from r1omni.labels import ALL_LABELS, VOCABULARIES, canonical, lookup
from r1omni.prompts import extract_answer, extract_think
from r1omni.rewards import format_reward

OTHER = "(other)"  # confusion-matrix column for unparsable or out-of-class predictions


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
    )


# ----------------------------------------------------------------------------- prediction files


@dataclass
class PredictionSet:
    """The columns of a predictions file."""

    labels: list[str]
    predictions: list[str | None]
    completions: list[str] | None  # None when rows give bare predictions
    datasets: list[str | None]
    cues: list[dict | None]


def read_predictions(path: str | Path) -> PredictionSet:
    """Rows of a predictions JSONL: ``label`` and ``prediction`` or ``completion``, optionally
    ``dataset`` and ``cues``.

    A completion's answer is extracted leniently; a bare prediction is mapped through the
    synonym map. Raises `ManifestError` naming the line for a malformed row or an unknown label.
    """
    found = PredictionSet([], [], [], [], [])
    for where, row in iter_jsonl(path, kind="predictions file"):
        if not isinstance(row, dict) or "label" not in row:
            raise ManifestError(f"{where}: row has no 'label'")
        try:
            found.labels.append(canonical(row["label"]))
        except LabelError as err:
            raise ManifestError(f"{where}: {err}") from None
        if "completion" in row:
            found.completions.append(str(row["completion"]))
            found.predictions.append(extract_answer(found.completions[-1], lenient=True))
        elif "prediction" in row:
            pred = row["prediction"]
            found.predictions.append(lookup(pred) if isinstance(pred, str) else None)
        else:
            raise ManifestError(f"{where}: row has neither 'prediction' nor 'completion'")
        found.datasets.append(row.get("dataset"))
        found.cues.append(row.get("cues"))
    if not found.labels:
        raise ManifestError(f"{path}: no prediction rows")
    if found.completions and len(found.completions) != len(found.labels):
        raise ManifestError(f"{path}: mixes rows with 'completion' and rows with only 'prediction'")
    found.completions = found.completions or None
    return found


def plot_confusion(scores: Scores, path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix as a PNG, counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = scores.confusion
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    columns = scores.classes + [OTHER]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(columns), 1.0 + 0.6 * len(scores.classes)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(scores.classes)), scores.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(title or f"UAR {scores.uar:.1%}  WAR {scores.war:.1%}  (n={scores.n})")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def evaluate_predictions(path: str | Path, out_dir: str | Path | None = None) -> Scores:
    """Score a predictions file; with `out_dir`, write metrics.json and confusion_matrix.png."""
    rows = read_predictions(path)
    scores = score(rows.labels, rows.predictions, rows.completions, class_order(rows.labels, rows.datasets),
                   rows.cues)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(scores.to_json(), indent=2) + "\n")
        plot_confusion(scores, out / "confusion_matrix.png")
    return scores


def scores_table(scores: Scores, title: str = "evaluation"):
    """The scores as a rich table: headline metrics, then recall per class."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("UAR", f"{scores.uar:.2%}")
    table.add_row("WAR", f"{scores.war:.2%}")
    table.add_row("format pass rate", "—" if scores.format_rate is None else f"{scores.format_rate:.2%}")
    table.add_row("unparsable rate", f"{scores.unparsable_rate:.2%}")
    table.add_row("clips", str(scores.n))
    if scores.faithfulness:
        for key in ("precision", "recall", "f1"):
            value = scores.faithfulness[key]
            table.add_row(f"cue {key}", "—" if value is None else f"{value:.2%}")
    for label, recall in scores.per_class.items():
        table.add_row(f"recall {label}", f"{recall:.2%}")
    return table


def plot_per_class_recall(results: dict[str, Scores], path: str | Path) -> Path:
    """Grouped bars: recall per class for each named result (e.g. each modality setting)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = next(iter(results.values())).classes
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(classes), 3.6))
    for k, (name, scores) in enumerate(results.items()):
        values = [scores.per_class.get(c, 0.0) for c in classes]
        ax.bar(np.arange(len(classes)) + (k - (len(results) - 1) / 2) * width, values, width,
               label=f"{name} (UAR {scores.uar:.1%})")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown_report(results: dict[str, Scores], title: str) -> str:
    """A Markdown table of the headline metrics per named result, then recall per class."""
    lines = [f"# {title}", "", "| setting | n | UAR | WAR | format | unparsable | cue precision | cue recall |",
             "|---|---|---|---|---|---|---|---|"]
    for name, s in results.items():
        faith = s.faithfulness or {}

        def pct(value):
            return "—" if value is None else f"{value:.1%}"

        lines.append(f"| {name} | {s.n} | {pct(s.uar)} | {pct(s.war)} | {pct(s.format_rate)} | "
                     f"{pct(s.unparsable_rate)} | {pct(faith.get('precision'))} | {pct(faith.get('recall'))} |")
    classes = next(iter(results.values())).classes
    lines += ["", "Recall per class:", "", "| setting | " + " | ".join(classes) + " |",
              "|---|" + "---|" * len(classes)]
    for name, s in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{s.per_class.get(c, 0.0):.1%}" for c in classes) + " |")
    return "\n".join(lines) + "\n"
