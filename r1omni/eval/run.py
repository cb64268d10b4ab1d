"""Evaluate a trained model on a manifest: predict every row, score, write the report."""

from __future__ import annotations

import json
from pathlib import Path

from r1omni.data.manifest import ClipRow
from r1omni.errors import R1OmniError
from r1omni.eval.metrics import Scores, class_order, score
from r1omni.eval.reports import markdown_report, plot_confusion, plot_per_class_recall
from r1omni.predict import Predictor
from r1omni.prompts import MODAL_SETTINGS


def evaluate_model(predictor: Predictor, rows: list[ClipRow], out: str | Path | None = None,
                   settings=("video_audio",), batch_size: int = 8, progress=None) -> dict[str, Scores]:
    """Scores per modal setting (``video_audio``, ``video``, ``audio``); with `out`, writes
    metrics.json, predictions.jsonl (one file per setting when several), report.md, confusion
    matrices and a per-class recall plot. Rows whose media cannot be read in a setting (a corrupt
    file; a clip without sound in the audio setting) are left out of its scores, listed in
    `Scores.left_out` with their error, and keep the error in the predictions file; a setting
    in which no row can be read raises `R1OmniError`."""
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
                       classes, [r.cues for r, _ in scored])
        scores.left_out = {p.id: p.error for p in predictions if p.error is not None}
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
