"""Predictions files: read rows with a label and a prediction or completion, and score them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from r1omni.claims import Measurement, measurement_of
from r1omni.data.manifest import check_field_types, iter_jsonl
from r1omni.errors import LabelError, ManifestError
from r1omni.eval.metrics import Scores, class_order, score
from r1omni.eval.reports import plot_confusion
from r1omni.labels import canonical, lookup
from r1omni.prompts import extract_answer

PREDICTION_TYPES = {"label": (str,), "completion": (str,), "dataset": (str,), "cues": (dict,), "measured": (dict,)}


@dataclass
class PredictionSet:
    """The columns of a predictions file."""

    labels: list[str]
    predictions: list[str | None]
    completions: list[str] | None  # None when rows give bare predictions
    datasets: list[str | None]
    cues: list[dict | None]
    measured: list[Measurement | None]


def read_predictions(path: str | Path) -> PredictionSet:
    """Rows of a predictions JSONL: ``label`` and ``prediction`` or ``completion``, optionally
    ``dataset``, ``cues`` and ``measured`` (what `r1omni eval` writes: the clip's measurement as the
    model was shown it; without it, the cues of both modalities).

    A completion's answer is extracted leniently; a bare prediction is mapped through the
    synonym map. Raises `ManifestError` naming the line for a malformed row or an unknown label.
    """
    found = PredictionSet([], [], [], [], [], [])
    for where, row in iter_jsonl(path, kind="predictions file"):
        if not isinstance(row, dict) or "label" not in row:
            raise ManifestError(f"{where}: row has no 'label'")
        check_field_types(row, PREDICTION_TYPES, f"{where}: ")
        try:
            found.labels.append(canonical(row["label"]))
        except LabelError as err:
            raise ManifestError(f"{where}: {err}") from None
        if "completion" in row:
            found.completions.append(row["completion"] or "")
            found.predictions.append(extract_answer(found.completions[-1], lenient=True))
        elif "prediction" in row:
            pred = row["prediction"]
            found.predictions.append(lookup(pred) if isinstance(pred, str) else None)
        else:
            raise ManifestError(f"{where}: row has neither 'prediction' nor 'completion'")
        found.datasets.append(row.get("dataset"))
        found.cues.append(row.get("cues"))
        try:
            found.measured.append(Measurement.from_json(row["measured"]) if row.get("measured")
                                  else measurement_of(row.get("cues")))
        except (TypeError, ValueError, AttributeError) as err:
            raise ManifestError(f"{where}: 'measured' is not a measurement r1omni wrote ({err})") from None
    if found.completions and len(found.completions) != len(found.labels):
        raise ManifestError(f"{path}: mixes rows with 'completion' and rows with only 'prediction'")
    found.completions = found.completions or None
    return found


def score_predictions_file(path: str | Path, out_dir: str | Path | None = None) -> Scores:
    """Score a predictions file; with `out_dir`, write metrics.json and confusion_matrix.png."""
    rows = read_predictions(path)
    scores = score(rows.labels, rows.predictions, rows.completions, class_order(rows.labels, rows.datasets),
                   rows.cues, rows.measured)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(scores.to_json(), indent=2) + "\n")
        plot_confusion(scores, out / "confusion_matrix.png")
    return scores
