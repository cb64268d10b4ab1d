"""Evaluate a trained model on a manifest: predict every row, score, write the report."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

from r1omni.atomic import replacing, write_text
from r1omni.claims import measurement_of
from r1omni.data.manifest import ClipRow
from r1omni.errors import R1OmniError
from r1omni.eval.metrics import Scores, bootstrap_intervals, class_order, group_scores, score
from r1omni.eval.reports import markdown_report, plot_confusion, plot_per_class_recall
from r1omni.labels import lookup
from r1omni.media import face_rate
from r1omni.models.standardize import GROUPINGS
from r1omni.predict import Prediction, PredictionWriter, Predictor
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
                   settings=None, batch_size: int = 8, progress=None, standardize: str = "model",
                   resume: bool = False) -> dict[str, Scores]:
    """Scores per modal setting (``video_audio``, ``video``, ``audio``; default the model's own);
    with `out`, writes metrics.json, predictions.jsonl (one file per setting when several),
    report.md, confusion matrices and a per-class recall plot.

    Rows labelled with classes outside the model's label vocabulary are dropped before
    predicting and counted per label in `Scores.dropped_labels`. Rows whose media cannot be read
    in a setting (a corrupt file; a clip without sound in the audio setting) are left out of its
    scores, listed in `Scores.left_out` with their error, and keep the error in the predictions
    file; a setting in which no row can be read raises `R1OmniError`. `standardize="corpus"`
    standardises each corpus's clips by that corpus's own statistics, fitted on these rows'
    clips first (unlabelled), and ``"speaker"`` each speaker's by their own; ``"model"`` keeps
    the training clips'. Scores are also given per corpus and per speaker (`Scores.groups`).

    Interruption: predictions stream to ``OUT/predictions*.jsonl.partial`` and every output is
    put in place only when all settings are done, so a killed run leaves the previous outputs
    whole and never mixed with new ones; `resume` continues it (`EvalProgress`)."""
    if standardize not in ("model", *GROUPINGS):
        raise R1OmniError(f"standardize must be model, {' or '.join(GROUPINGS)}, got {standardize!r}")
    settings = tuple(settings or (model_setting(predictor),))
    given, (rows, dropped) = rows, known_label_rows(rows, predictor.vocab)
    if not rows:
        raise R1OmniError(f"no row has a label the model knows ({', '.join(predictor.vocab)}); "
                          f"labels found: {', '.join(dropped)}")
    record = EvalProgress(Path(out), rows, settings, resume) if out is not None else None
    if standardize != "model":  # on every clip given, whatever its label: no label may shape the statistics
        predictor.standardize_on(given, by=standardize)
    results: dict[str, Scores] = {}
    classes = class_order([r.label for r in rows], [r.dataset for r in rows])
    writers = {}
    for setting in settings:
        writer = record.writer(f"predictions{_suffix(setting, settings)}.jsonl") if record else None
        predictions = _predictions(predictor, rows, setting, batch_size, writer, record, progress)
        writers[setting] = writer
        scored = [(r, p) for r, p in zip(rows, predictions) if p.error is None]
        if not scored:
            examples = "; ".join(f"{p.id}: {p.error}" for p in predictions[:3])
            raise R1OmniError(f"{setting}: none of the {len(rows)} rows could be read, e.g. {examples}")
        labels, answers = [r.label for r, _ in scored], [p.answer for _, p in scored]
        scores = score(labels, answers, [p.completion for _, p in scored], classes, [r.cues for r, _ in scored],
                       [measurement_of(r.cues, r.meta, MODAL_SETTINGS[setting]) for r, _ in scored])
        scores.intervals = bootstrap_intervals(labels, answers)
        scores.left_out = {p.id: p.error for p in predictions if p.error is not None}
        scores.faces = face_rate([p.faces for _, p in scored]) if any(p.faces for _, p in scored) else None
        scores.dropped_labels = dropped
        scores.statistics = standardize
        scores.groups = {"corpus": group_scores(labels, answers, [r.dataset for r, _ in scored]),
                         "speaker": group_scores(labels, answers, [speaker_of(r) for r, _ in scored])}
        results[setting] = scores
    if record is not None:
        _publish(record.out, results, settings, writers)
        record.finish()
    return results


def speaker_of(row: ClipRow) -> str:
    """A row's speaker named within its corpus (two corpora may both have a speaker 13)."""
    return f"{row.dataset} {row.speaker}" if row.speaker else f"{row.dataset} (no speaker given)"


def _suffix(setting: str, settings: tuple[str, ...]) -> str:
    """What an output file's name carries of its setting: nothing when there is one setting."""
    return "" if len(settings) == 1 else f"_{setting}"


def _predictions(predictor: Predictor, rows: list[ClipRow], setting: str, batch_size: int, writer, record,
                 progress) -> list[Prediction]:
    """A setting's predictions: those an interrupted run finished (whole batches), then the rest,
    each written as it is made. `writer` and `record` are both given (an output folder) or neither."""
    if writer is not None and record.finished(setting):
        return [Prediction(**row) for row in writer.resumed(published=True)]
    done = writer.resumed_batches([r.id for r in rows], batch_size) if writer is not None else []
    predictions = [Prediction(**row) for row in done]
    if writer is not None:
        writer.start(done)
    if progress is not None and done:
        progress(setting, len(done), len(rows))
    for prediction in predictor.predict_rows(rows[len(done):], MODAL_SETTINGS[setting], batch_size):
        predictions.append(prediction)
        if writer is not None:
            writer.write(prediction)
        if progress is not None:
            progress(setting, len(predictions), len(rows))
    if writer is not None:
        writer.close()
        record.done(setting)
    return predictions


def _publish(out: Path, results: dict[str, Scores], settings: tuple[str, ...], writers: dict) -> None:
    """Every output of a finished evaluation put in place, each whole."""
    for setting, scores in results.items():
        writers[setting].publish()
        with replacing(out / f"confusion_matrix{_suffix(setting, settings)}.png") as temporary:
            plot_confusion(scores, temporary, title=f"{setting}: UAR {scores.uar:.1%}  WAR {scores.war:.1%}  "
                           f"(n={scores.n})")
    metrics = results[settings[0]].to_json() if len(settings) == 1 else {s: r.to_json() for s, r in results.items()}
    write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_text(out / "report.md", markdown_report(results, "Evaluation"))
    with replacing(out / "per_class_recall.png") as temporary:
        plot_per_class_recall(results, temporary)


class EvalProgress:
    """What an evaluation into OUT has done so far, in ``OUT/.eval-progress.json``: the rows and
    settings it was started on, and the settings finished. A folder holding one is refused
    unless `resume`, which must be asked for the same rows and settings (`resume` where there is
    nothing to continue starts afresh)."""

    NAME = ".eval-progress.json"

    def __init__(self, out: Path, rows: list[ClipRow], settings: tuple[str, ...], resume: bool):
        self.out, self.resume = out, resume
        self.path = out / self.NAME
        self.key = {"rows": hashlib.sha256(json.dumps([[r.id, r.label] for r in rows]).encode()).hexdigest(),
                    "settings": list(settings)}
        if resume and self.path.is_file():
            self.state = json.loads(self.path.read_text(encoding="utf-8"))
            if {k: self.state.get(k) for k in self.key} != self.key:
                raise R1OmniError(f"--resume: the evaluation in {out} was started on other rows or settings; "
                                  "run without --resume into another folder, or delete it")
        else:
            if self.path.exists() or any(out.glob("*.partial")):
                raise R1OmniError(f"{out}: holds an interrupted evaluation; --resume continues it, or delete "
                                  f"{self.NAME} and the .partial files to start over")
            out.mkdir(parents=True, exist_ok=True)
            self.state = {**self.key, "finished": []}
            write_text(self.path, json.dumps(self.state))

    def writer(self, name: str) -> PredictionWriter:
        return PredictionWriter(self.out / name, resume=self.resume)

    def finished(self, setting: str) -> bool:
        return setting in self.state["finished"]

    def done(self, setting: str) -> None:
        self.state["finished"].append(setting)
        write_text(self.path, json.dumps(self.state))

    def finish(self) -> None:
        self.path.unlink()
