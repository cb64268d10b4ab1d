"""What the web page shows, computed without the web page: one clip's answer, reasoning,
label probabilities, frames and spectrogram; a batch's table, scores and downloads.

Kept free of Gradio so that it is tested directly; `app.py` only wires it to components.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from r1omni.data.manifest import read_manifest
from r1omni.errors import R1OmniError
from r1omni.eval.metrics import Scores, class_order, score
from r1omni.eval.reports import plot_confusion
from r1omni.eval.run import known_label_rows
from r1omni.media import IMAGE_EXTENSIONS, probe
from r1omni.predict import Prediction, PredictionWriter, Predictor, streams_of
from r1omni.prompts import MODAL_SETTINGS
from r1omni.serve.figures import spectrogram_image
from r1omni.serve.files import OUTSIDE, ServerFiles
from r1omni.serve.limits import ServeLimits

MANIFEST_SUFFIXES = (".jsonl",)


@dataclass
class ClipView:
    prediction: Prediction
    frames: list[np.ndarray]  # what the model saw, [S, S, 3] uint8 each
    spectrogram: np.ndarray | None  # [H, W, 3] uint8, of the sound the model heard
    captions: list[str] = field(default_factory=list)  # per frame, where the face search found the face

    def gallery(self) -> list[tuple[np.ndarray, str | None]]:
        """The frames with their captions, as the page's gallery shows them."""
        return list(zip(self.frames, self.captions or [None] * len(self.frames)))

    def pictures_in(self, folder: Path) -> tuple[list[tuple[str, str | None]], str | None]:
        """The gallery and the spectrogram as PNG files written in `folder` (this request's own):
        (path, caption) per frame, and the spectrogram's path. The page hands Gradio files, not
        arrays: Gradio rewrites an array's cached image in place on every request, so a visitor
        still downloading the same picture from an earlier request could read it truncated."""
        from PIL import Image

        folder.mkdir(parents=True, exist_ok=True)
        gallery = []
        for number, (frame, caption) in enumerate(self.gallery()):
            Image.fromarray(frame).save(folder / f"frame_{number}.png")
            gallery.append((str(folder / f"frame_{number}.png"), caption))
        if self.spectrogram is None:
            return gallery, None
        Image.fromarray(self.spectrogram).save(folder / "spectrogram.png")
        return gallery, str(folder / "spectrogram.png")


FACE_CAPTIONS = {"face": "face found", "crop": "a face crop, used whole", "nearest": "no face: the box of the nearest "
                 "frame", "none": "no face found: the whole frame"}


@dataclass
class BatchView:
    predictions: list[Prediction]
    scores: Scores | None  # when the clips carry labels the model knows
    confusion_png: Path | None
    downloads: list[Path] = field(default_factory=list)  # predictions.jsonl, predictions.csv
    dropped_labels: dict[str, int] = field(default_factory=dict)


def check_duration(path: str | Path, limits: ServeLimits) -> None:
    """Refuse a clip longer than the cap (from its headers; an unreadable file fails here too)."""
    if Path(path).suffix.lower() in IMAGE_EXTENSIONS:
        return
    seconds = probe(path).duration
    if seconds is not None and seconds > limits.max_seconds:
        raise R1OmniError(f"{Path(path).name}: {seconds:.0f} s long, over this server's cap of "
                          f"{limits.max_seconds:.0f} s (r1omni serve --max-seconds)")


def analyse_clip(predictor: Predictor, video: str | None, audio: str | None, setting: str,
                 limits: ServeLimits) -> ClipView:
    """One clip: `video` gives the picture (and the sound when `audio` is None), `audio` the
    sound; `setting` is a key of MODAL_SETTINGS. Raises `R1OmniError` with a message for the page."""
    if not video and not audio:
        raise R1OmniError("upload or record a video or an audio clip first, or pick an example")
    for path in (video, audio):
        if path:
            check_duration(path, limits)
    picture, sound = streams_of(video) if video else (None, None)
    sound = audio or sound
    name = Path(video or audio).name
    media = predictor.read(name, picture, sound, MODAL_SETTINGS[setting])
    (prediction,) = predictor.predict_media([(name, media)], probabilities=True,
                                            check_claims=predictor.voice_levels is not None)
    frames = list(media.frames) if media.frames is not None else []
    heard = spectrogram_image(media.audio) if media.audio is not None else None
    captions = [FACE_CAPTIONS[status] for status in media.faces.frames] if media.faces is not None else []
    return ClipView(prediction, frames, heard, captions)


HOLDS, FAILS = "matches the measured sound", "does not match"


def claim_segments(reasoning: str | None, claims: list[dict] | None) -> list[tuple[str, str | None]]:
    """The reasoning cut into (text, mark) pieces for the page: each judged claim marked as
    matching the measured sound or not, the rest unmarked."""
    reasoning = reasoning or ""
    pieces, at = [], 0
    for claim in sorted((c for c in claims or () if c["holds"] is not None), key=lambda c: c["start"]):
        if claim["start"] < at:  # a later mention of a claim already marked
            continue
        pieces += [(reasoning[at : claim["start"]], None)] if claim["start"] > at else []
        pieces.append((reasoning[claim["start"] : claim["end"]], HOLDS if claim["holds"] else FAILS))
        at = claim["end"]
    return pieces + ([(reasoning[at:], None)] if at < len(reasoning) else [])


def claim_rows(claims: list[dict] | None) -> list[list[str]]:
    """One table row per claim: as written, what it says, what was measured (words and value), verdict."""
    rows = []
    for claim in claims or ():
        measured = claim.get("measured", "")
        if "value" in claim and claim["value"] is not None:
            measured = f"{measured} ({claim['value']:.2f})"
        verdict = {True: "holds", False: "does not hold", None: "not judged"}[claim["holds"]]
        rows.append([claim["text"], claim["claim"], measured, f"{verdict} ({claim['why']})"])
    return rows


@dataclass
class BatchItem:
    name: str
    video: str | None
    audio: str | None
    label: str | None
    problem: str | None = None  # why the clip is refused before any file is opened


def batch_items(files: list[str], manifest: str | None, predictor: Predictor, limits: ServeLimits,
                server: ServerFiles) -> tuple[list[BatchItem], dict[str, int]]:
    """The clips of a batch, from uploaded media files, or from a manifest and the rows left out
    because the model does not know their label. An uploaded manifest's media are found among the
    uploads by file name, never on disk; a manifest named by path must lie in the server's data
    folder, and so must its media."""
    manifests = [f for f in files if Path(f).suffix.lower() in MANIFEST_SUFFIXES]
    media = [f for f in files if Path(f).suffix.lower() not in MANIFEST_SUFFIXES]
    if manifest:
        manifests.append(server.manifest(manifest))
    if len(manifests) > 1:
        raise R1OmniError(f"give one manifest at a time, got {len(manifests)}")
    if not manifests:
        return [BatchItem(Path(f).name, *streams_of(f), None) for f in media], {}
    uploaded_manifest = not manifest
    try:
        rows = read_manifest(manifests[0], max_bytes=limits.max_manifest_kb * 1024, max_rows=limits.max_batch_files)
    except R1OmniError as err:
        raise R1OmniError(server.shown(str(err))) from None
    kept, dropped = known_label_rows(rows, predictor.vocab)
    uploads = {Path(f).name: f for f in media}
    items = []
    for row in kept:
        found, missing = {}, []
        for key in ("video", "audio"):
            path = getattr(row, key)
            if path:
                found[key] = uploads.get(Path(path).name) if uploaded_manifest else server.inside(path)
                missing += [Path(path).name] if found[key] is None else []
        problem = None
        if missing:
            problem = ", ".join(missing) + (": not among the uploaded files" if uploaded_manifest
                                            else f": {OUTSIDE}")
        items.append(BatchItem(row.id, found.get("video") and str(found["video"]),
                               found.get("audio") and str(found["audio"]), row.label, problem))
    return items, dropped


def analyse_batch(predictor: Predictor, files: list[str], manifest: str | None, setting: str,
                  limits: ServeLimits, out: Path, progress=None, server: ServerFiles | None = None,
                  stopped=None) -> BatchView:
    """Every clip of a batch: a prediction each (an unreadable, over-long or refused clip gets
    its error and the others go on), UAR/WAR and a confusion matrix when labels are present, and
    the predictions written to `out` as JSONL and CSV. `progress(done, total)` as clips finish;
    `stopped()` true ends the work between clips (a request past its deadline)."""
    server = server or ServerFiles()
    items, dropped = batch_items(files, manifest, predictor, limits, server)
    if not items:
        raise R1OmniError("no clips to analyse: upload media files, or a manifest (.jsonl) with its media")
    if len(items) > limits.max_batch_files:
        raise R1OmniError(f"{len(items)} clips, over this server's cap of {limits.max_batch_files} per batch")
    refused = {}  # position -> the error, for clips refused before decoding
    for position, item in enumerate(items):
        try:
            if item.problem:
                raise R1OmniError(item.problem)
            for path in {item.video, item.audio} - {None}:
                check_duration(path, limits)
        except R1OmniError as err:
            refused[position] = Prediction.failed(item.name, str(err))
    readable = [(item.name, item.video, item.audio) for position, item in enumerate(items) if position not in refused]
    made = predictor.predict_clips(readable, MODAL_SETTINGS[setting], probabilities=True)
    predictions = []
    for position, item in enumerate(items):
        if stopped is not None and stopped():
            raise R1OmniError("stopped: past this server's time limit")
        prediction = refused[position] if position in refused else next(made)
        prediction.label = item.label
        prediction.error = prediction.error and server.shown(prediction.error)
        predictions.append(prediction)
        if progress is not None:
            progress(len(predictions), len(items))
    out.mkdir(parents=True, exist_ok=True)
    downloads = [out / "predictions.jsonl", out / "predictions.csv"]
    for path in downloads:
        with PredictionWriter(path) as writer:
            for prediction in predictions:
                writer.write(prediction)
    scored = [p for p in predictions if p.label and p.error is None]
    if not scored:
        return BatchView(predictions, None, None, downloads, dropped)
    labels = [p.label for p in scored]
    scores = score(labels, [p.answer for p in scored], [p.completion for p in scored], class_order(labels))
    return BatchView(predictions, scores, plot_confusion(scores, out / "confusion_matrix.png"), downloads, dropped)


BUSY = "the server is busy with earlier requests; try again in a minute"


class Deadline:
    """Runs requests one at a time on a worker thread and answers each after at most `seconds`.

    A request past its deadline is answered with an error and told to stop: a batch stops at its
    next clip, a request not yet started never starts. A single clip's forward pass cannot be
    interrupted; while one overruns, new requests are answered `BUSY` at once rather than queued
    behind it, and at most `waiting` requests ever queue behind the one running.
    """

    def __init__(self, seconds: float, waiting: int = 1):
        self.seconds = seconds
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="r1omni-serve")
        self.slots = threading.BoundedSemaphore(1 + waiting)
        self.overrunning = threading.Event()  # a request past its deadline still holds the worker

    def run(self, fn, *args, stoppable: bool = False):
        """`fn(*args)`; with `stoppable`, `fn` also gets `stopped=` a function that turns true
        once the deadline has passed."""
        if self.overrunning.is_set() or not self.slots.acquire(blocking=False):
            raise R1OmniError(BUSY)
        late = threading.Event()
        future = self.pool.submit(fn, *args, **({"stopped": late.is_set} if stoppable else {}))
        future.add_done_callback(lambda _: (self.slots.release(), late.is_set() and self.overrunning.clear()))
        try:
            return future.result(timeout=self.seconds)
        except FutureTimeout:
            late.set()
            if not future.cancel() and not future.done():
                self.overrunning.set()
            raise R1OmniError(f"the request took longer than this server's {self.seconds:.0f} s limit "
                              "(r1omni serve --timeout) and was stopped; try a shorter clip or fewer") from None
