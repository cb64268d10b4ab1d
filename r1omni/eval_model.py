"""Evaluate a trained model on a manifest: predict every row, score, write the report."""

from __future__ import annotations

import json
from pathlib import Path

from r1omni.data.manifest import ClipRow
from r1omni.evaluate import Scores, class_order, markdown_report, plot_confusion, plot_per_class_recall, score
from r1omni.predict import Model


def evaluate_model(model: Model, rows: list[ClipRow], out: str | Path | None = None,
                   modes=("video_audio",), batch_size: int = 8, progress=None) -> dict[str, Scores]:
    """Scores per modality setting; with `out`, writes metrics.json, predictions.jsonl (one file
    per setting when several), report.md, confusion matrices and a per-class recall plot.
    Rows whose media cannot be read count as unparsable predictions and are listed."""
    results: dict[str, Scores] = {}
    out = Path(out) if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    classes = class_order([r.label for r in rows], [r.dataset for r in rows])
    for mode in modes:
        items = [(r.id, r.video, r.audio) for r in rows]
        predictions = []
        for prediction in model.predict_clips(items, mode, batch_size):
            predictions.append(prediction)
            if progress is not None:
                progress(mode, len(predictions), len(rows))
        labels = [r.label for r in rows]
        completions = [p.completion for p in predictions]
        scores = score(labels, [p.answer for p in predictions], completions, classes, [r.cues for r in rows])
        results[mode] = scores
        if out is not None:
            name = "predictions.jsonl" if len(modes) == 1 else f"predictions_{mode}.jsonl"
            with (out / name).open("w") as handle:
                for row, p in zip(rows, predictions):
                    handle.write(json.dumps({"id": row.id, "label": row.label, "prediction": p.answer,
                                             "completion": p.completion, "error": p.error,
                                             **({"cues": row.cues} if row.cues else {})}) + "\n")
            suffix = "" if len(modes) == 1 else f"_{mode}"
            plot_confusion(scores, out / f"confusion_matrix{suffix}.png", title=f"{mode}: UAR {scores.uar:.1%}  "
                           f"WAR {scores.war:.1%}  (n={scores.n})")
    if out is not None:
        metrics = results[modes[0]].to_json() if len(modes) == 1 else {m: s.to_json() for m, s in results.items()}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (out / "report.md").write_text(markdown_report(results, "Evaluation"))
        plot_per_class_recall(results, out / "per_class_recall.png")
    return results

