"""Evaluate a trained model on a manifest: predict every row, score, write the report."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

from r1omni.claims import measurement_of
from r1omni.data.manifest import ClipRow
from r1omni.errors import R1OmniError
from r1omni.eval.metrics import Scores, bootstrap_intervals, class_order, score
from r1omni.eval.reports import markdown_report, plot_confusion, plot_per_class_recall
from r1omni.labels import lookup
from r1omni.media import face_rate
from r1omni.predict import Predictor
from r1omni.prompts import MODAL_SETTINGS


def model_setting(predictor: Predictor) -> str:
    """The modal setting of the modalities the model was trained on (``audio`` for a speech model)."""
    return next(name for name, shown in MODAL_SETTINGS.items() if shown == predictor.modalities)


def known_label_rows(rows: list[ClipRow], vocab) -> tuple[list[ClipRow], dict[str, int]]:
    """The rows whose label the model's vocabulary has, under its canonical name (a corpus's
    "fearful" is the model's "fear"), and the number of rows of each label it lacks: a model
    never taught "calm" or "surprise" cannot be scored on them."""
    kept, dropped = [], Counter()
    for row in rows:
        name = lookup(row.label)
        if name in vocab:
            kept.append(replace(row, label=name))
        else:
            dropped[row.label] += 1
    return kept, dict(sorted(dropped.items()))


def evaluate_model(predictor: Predictor, rows: list[ClipRow], out: str | Path | None = None,
                   settings=None, batch_size: int = 8, progress=None, standardize: str = "model") -> dict[str, Scores]:
    """Scores per modal setting (``video_audio``, ``video``, ``audio``; default the model's own);
    with `out`, writes metrics.json, predictions.jsonl (one file per setting when several),
    report.md, confusion matrices and a per-class recall plot.

    Rows labelled with classes outside the model's label vocabulary are dropped before
    predicting and counted per label in `Scores.dropped_labels`. Rows whose media cannot be read
    in a setting (a corrupt file; a clip without sound in the audio setting) are left out of its
    scores, listed in `Scores.left_out` with their error, and keep the error in the predictions
    file; a setting in which no row can be read raises `R1OmniError`. `standardize="corpus"`
    refits the model's feature standardisation on these rows' clips first (unlabelled
    statistics of the test corpus); ``"model"`` keeps the training corpus's."""
    if standardize not in ("model", "corpus"):
        raise R1OmniError(f"standardize must be model or corpus, got {standardize!r}")
    settings = tuple(settings or (model_setting(predictor),))
    rows, dropped = known_label_rows(rows, predictor.vocab)
    if not rows:
        raise R1OmniError(f"no row has a label the model knows ({', '.join(predictor.vocab)}); "
                          f"labels found: {', '.join(dropped)}")
    if standardize == "corpus":
        predictor.standardize_on(rows)
    results: dict[str, Scores] = {}
    out = Path(out) if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    classes = class_order([r.label for r in rows], [r.dataset for r in rows])
    for setting in settings:
        predictions = []
        for prediction in predictor.predict_rows(rows, MODAL_SETTINGS[setting], batch_size):
            predictions.append(prediction)
            if progress is not None:
                progress(setting, len(predictions), len(rows))
        scored = [(r, p) for r, p in zip(rows, predictions) if p.error is None]
        if not scored:
            examples = "; ".join(f"{p.id}: {p.error}" for p in predictions[:3])
            raise R1OmniError(f"{setting}: none of the {len(rows)} rows could be read, e.g. {examples}")
        scores = score([r.label for r, _ in scored], [p.answer for _, p in scored], [p.completion for _, p in scored],
                       classes, [r.cues for r, _ in scored],
                       [measurement_of(r.cues, r.meta, MODAL_SETTINGS[setting]) for r, _ in scored])
        scores.intervals = bootstrap_intervals([r.label for r, _ in scored], [p.answer for _, p in scored])
        scores.left_out = {p.id: p.error for p in predictions if p.error is not None}
        scores.faces = face_rate([p.faces for _, p in scored]) if any(p.faces for _, p in scored) else None
        scores.dropped_labels = dropped
        results[setting] = scores
        if out is not None:
            suffix = "" if len(settings) == 1 else f"_{setting}"
            with (out / f"predictions{suffix}.jsonl").open("w") as handle:
                handle.writelines(json.dumps(p.to_json()) + "\n" for p in predictions)
            plot_confusion(scores, out / f"confusion_matrix{suffix}.png", title=f"{setting}: UAR {scores.uar:.1%}  "
                           f"WAR {scores.war:.1%}  (n={scores.n})")
    if out is not None:
        metrics = results[settings[0]].to_json() if len(settings) == 1 else {s: r.to_json() for s, r in results.items()}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (out / "report.md").write_text(markdown_report(results, "Evaluation"))
        plot_per_class_recall(results, out / "per_class_recall.png")
    return results
