"""Run a policy on clips: reasoning, answer and raw completion per clip, in one schema.

``load_model(DIR).predict("clip.mp4")`` in Python, ``r1omni predict PATH... --model DIR`` on the
command line; `r1omni eval` and validation during training predict through the same `Predictor`
and write the same `Prediction` rows. Clips that cannot be read are reported with their error;
the others go on.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from r1omni.atomic import replacing, write_text
from r1omni.claims import LEVEL_WORDS, Measurement, check_claims, measurement_of
from r1omni.data.manifest import ClipRow
from r1omni.errors import R1OmniError
from r1omni.labels import ALL_LABELS, vocabulary
from r1omni.media import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, MEDIA_EXTENSIONS
from r1omni.models import ClipMedia, OmniPolicy, load_policy, loading_options
from r1omni.models.shared_prefix import Prompt
from r1omni.models.standardize import fit_standardizers, statistics_group, statistics_used
from r1omni.prompts import MODALITIES, build_messages, extract_answer, extract_think, lists_labels


@dataclass
class Prediction:
    """One clip's prediction: what `r1omni predict` and `r1omni eval` write, a JSON line each."""

    id: str  # the clip's manifest id, or its path for files given directly
    answer: str | None  # canonical label, or None when the answer is missing or out of vocabulary
    raw_answer: str | None  # the text inside <answer>, as written
    reasoning: str | None  # the text inside <think>
    completion: str
    out_of_vocabulary: bool
    error: str | None = None  # why the clip could not be read (then everything else is empty)
    label: str | None = None  # the true label, when the clip came from a manifest
    cues: dict | None = None  # the clip's true cues (synthetic world), for faithfulness
    # P(label) at the answer over the label vocabulary, when asked for (see answer_probabilities)
    probabilities: dict[str, float] | None = None
    # What was measured of the clip (r1omni.claims.Measurement as JSON) and each claim of the
    # reasoning judged against it (see claims_json), when the clip has a measurement
    measured: dict | None = None
    claims: list[dict] | None = None
    # Where the face was found in the frames the model saw (r1omni.media.FaceReport as JSON), for
    # a model whose video tower reads faces
    faces: dict | None = None
    # Modality -> whose feature statistics standardised the clip's tower features, in words (a
    # model that standardises them: the model's training clips', or a corpus's or speaker's own)
    statistics: dict[str, str] | None = None

    @classmethod
    def failed(cls, name: str, error: str) -> Prediction:
        """A clip that could not be read or was refused: everything empty but the reason."""
        return cls(name, None, None, None, "", False, error)

    def to_json(self) -> dict:
        optional = ("label", "cues", "probabilities", "measured", "claims", "faces", "statistics")
        return {k: v for k, v in asdict(self).items() if k not in optional or v is not None}


class PredictionWriter:
    """Predictions written as they are made, so that a killed run keeps what it did and can be
    continued, and `--out` appears only whole.

    Rows go to ``OUT.partial`` (a JSON line each, flushed); `publish` puts the finished file in
    place of OUT in one rename (``.csv``: converted first), replacing an older OUT. Creating the
    writer checks OUT and opens nothing, so a command checks its --out before loading a model
    and writes only after; a ``.partial`` left by a killed run is refused unless `resume`, which
    continues it (`resumed`, `start`)."""

    def __init__(self, path: str | Path, resume: bool = False):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.resume = resume
        self.handle = None
        if self.path.is_dir():
            raise R1OmniError(f"--out {self.path}: is a folder; give a file name ending .jsonl or .csv")
        existing = next(p for p in (self.path.parent, *self.path.parent.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise R1OmniError(f"--out {self.path}: cannot be written ({existing} is not a folder this user may "
                              "write in)")
        if self.partial.exists() and not resume:
            raise R1OmniError(f"{self.partial}: predictions of an interrupted run; --resume continues it, or "
                              "delete the file to start over")

    def resumed(self, published: bool = False) -> list[dict]:
        """The rows an interrupted run wrote, complete lines only (a line torn by the kill is
        dropped): its ``.partial``, else with `published` the JSONL OUT it had already put in
        place; none without `resume`."""
        source = self.partial if self.partial.is_file() or not published else self.path
        if not (self.resume and source.is_file()):
            return []
        rows = []
        for line in source.read_text(encoding="utf-8").splitlines(keepends=True):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # torn by the kill: it and anything after are written again
            if not line.endswith("\n"):
                rows.pop()
                break
        return rows

    def resumed_batches(self, ids: list[str], batch_size: int) -> list[dict]:
        """The rows of an interrupted run to keep for a run over `ids`: whole batches only, so
        that every batch is predicted as in an uninterrupted run; `R1OmniError` when they were
        made for other inputs."""
        done = self.resumed()
        if [row.get("id") for row in done] != ids[: len(done)]:
            raise R1OmniError(f"{self.partial}: written for other inputs than these; delete it to start over")
        return done[: len(done) // batch_size * batch_size]

    def start(self, kept: list[dict] = ()) -> PredictionWriter:
        """Open for writing, after the rows of `kept` (from `resumed`)."""
        write_text(self.partial, "".join(json.dumps(row) + "\n" for row in kept))
        self.handle = self.partial.open("a", encoding="utf-8")
        return self

    def write(self, prediction: Prediction) -> None:
        self.handle.write(json.dumps(prediction.to_json()) + "\n")
        self.handle.flush()

    def close(self) -> None:
        """Stop writing; the ``.partial`` stays for `resume` or `publish`."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def publish(self) -> Path:
        """The finished predictions put in place of OUT, whole (already done when a run killed
        after publishing is resumed)."""
        self.close()
        if not self.partial.exists() and self.path.exists():
            return self.path
        if self.path.suffix.lower() == ".csv":
            rows = [json.loads(line) for line in self.partial.read_text(encoding="utf-8").splitlines()]
            with replacing(self.path) as temporary, temporary.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, [f.name for f in fields(Prediction)])
                writer.writeheader()
                writer.writerows({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()}
                                 for row in rows)
            self.partial.unlink()
        else:
            with replacing(self.path) as temporary:
                os.replace(self.partial, temporary)
        return self.path

    def __enter__(self):
        return self.start() if self.handle is None else self

    def __exit__(self, kind, *exc):
        self.publish() if kind is None else self.close()


def claims_json(reasoning: str | None, measured: Measurement) -> list[dict]:
    """Each distinct claim of the reasoning against `measured`, in the order written: the words as
    written (`text`, at `start`:`end` of the reasoning), the claim (`claim`: a cue concept or a
    level's words), `holds` (true, false, or null when not judged), `why`, and for a voice level
    the measured level's words and value."""
    out = []
    for verdict in check_claims(reasoning or "", measured):
        claim = verdict.claim
        entry = {"text": (reasoning or "")[claim.start : claim.end], "start": claim.start, "end": claim.end,
                 "claim": claim.words, "holds": verdict.holds, "why": verdict.why}
        if claim.level is not None and claim.name in measured.levels:
            entry["measured"] = LEVEL_WORDS[claim.name][measured.levels[claim.name]]
            entry["value"] = measured.values.get(claim.name)
        out.append(entry)
    return out


def media_paths(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the media files inside given folders (sorted)."""
    found = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*")
                            if p.suffix.lower() in MEDIA_EXTENSIONS | IMAGE_EXTENSIONS and p.is_file())
        else:
            found.append(path)
    return found


def streams_of(path: str | Path) -> tuple[str | None, str | None]:
    """(video, audio) sources of one file: an audio file has no picture and an image no sound;
    anything else may hold both."""
    suffix = Path(path).suffix.lower()
    return (None if suffix in AUDIO_EXTENSIONS else str(path), None if suffix in IMAGE_EXTENSIONS else str(path))


class Predictor:
    """A policy ready to predict; see `load_model`. The prompt, label vocabulary and modalities
    default to those the model was trained with (recorded in its config), else the paper's
    prompt, any known emotion and both modalities."""

    def __init__(self, policy: OmniPolicy, prompt: str | None = None, labels: str | None = None,
                 max_new_tokens: int = 256):
        self.policy = policy.eval()
        task = policy.config.task or {}
        self.prompt = prompt or task.get("prompt", "r1omni")
        self.labels = labels or task.get("labels")
        self.vocab = vocabulary(self.labels) if self.labels else ALL_LABELS
        self.modalities = tuple(m for m in MODALITIES if m in task.get("modalities", MODALITIES))
        self.max_new_tokens = max_new_tokens
        # The terciles the model's voice-level words mean (a model trained on measured rationales).
        self.voice_levels = {k: tuple(v) for k, v in task["voice_levels"].items()} if task.get("voice_levels") else None
        self._egemaps = None
        self.statistics_of: dict[str, str | None] = {}  # clip name -> its statistics group (standardize_on)

    def standardize_on(self, rows: list[ClipRow], by: str = "corpus", modalities=None, progress=None) -> dict[str, int]:
        """Standardise these rows' features by their own (unlabelled) statistics from now on: each
        corpus's (`by="corpus"`) or each speaker's (``"speaker"``), fitted on these rows' clips, as
        for a test corpus recorded elsewhere; any other clip keeps the model's training statistics.
        Returns clips fitted per modality. Unreadable clips are skipped here (prediction reports
        them)."""
        if not self.policy.feature_standardizers():
            raise R1OmniError("this model standardises no tower features; there is nothing to refit")
        wanted = tuple(modalities or self.modalities)
        clips = (media for _, media in self.policy.readable_clips(rows, wanted, by))
        fitted = fit_standardizers(self.policy, clips, progress, wanted, groups=True, own=())
        self.statistics_of = {r.id: statistics_group(r, by) for r in rows}
        return fitted

    def standardize_on_paths(self, paths: Iterable[str | Path], modalities=None) -> dict[str, int]:
        """`standardize_on` for files given directly (`predict_paths`): the clips' statistics
        together, as one group ("the N clips given")."""
        paths = media_paths(paths)
        named = [ClipRow(str(path), "", f"the {len(paths)} clips given", *streams_of(path)) for path in paths]
        return self.standardize_on(named, "corpus", modalities)

    def _messages(self, modalities) -> list[dict]:
        return build_messages(self.prompt, modalities, labels=self.vocab if lists_labels(self.prompt) else None)

    def _result(self, name: str, text: str) -> Prediction:
        raw = extract_answer(text)
        answer = extract_answer(text, lenient=True, vocab=self.vocab)
        return Prediction(str(name), answer, raw, extract_think(text), text, raw is not None and answer is None)

    def read(self, name: str, video: str | Path | None, audio: str | Path | None, modalities=None) -> ClipMedia:
        """A clip's media as the model reads it; `R1OmniError` naming the clip when it cannot be
        read or holds none of the wanted streams."""
        modalities = self._modalities(modalities)
        media = self.policy.read_clip(video, audio, modalities)
        if not media.present():
            raise R1OmniError(f"{name}: has no {' or '.join(modalities)} stream the model can use")
        media.statistics = self.statistics_of.get(str(name))
        return media

    def _modalities(self, modalities) -> tuple[str, ...]:
        modalities = tuple(modalities or self.modalities)
        if not modalities or not set(modalities) <= set(MODALITIES):
            raise R1OmniError(f"modalities must be a non-empty subset of {MODALITIES}, got {modalities}")
        return modalities

    def check_measured_claims(self, prediction: Prediction, media: ClipMedia) -> None:
        """Measure the clip's sound (openSMILE's eGeMAPS, against the terciles the model was trained
        with) and judge each voice level the reasoning states against it: `prediction.measured` and
        `prediction.claims`. A clip without sound (or whose sound the model was not given) gets none."""
        from r1omni.data.acoustics import EGeMAPS, measure_clip

        if self.voice_levels is None:
            raise R1OmniError("this model was not trained on measured rationales (its task records no voice-level "
                              "terciles), so there is nothing to check its claims against")
        if media.audio is None:
            return
        self._egemaps = self._egemaps or EGeMAPS()
        acoustics = measure_clip(media.audio, self.voice_levels, self._egemaps)
        measured = measurement_of(meta={"acoustics": acoustics}, modalities=media.present())
        if measured is not None:
            prediction.measured, prediction.claims = measured.to_json(), claims_json(prediction.reasoning, measured)

    @torch.no_grad()
    def predict_media(self, clips: list[tuple[str, ClipMedia]], seed: int = 0, temperature: float = 0.0,
                      probabilities: bool = False, check_claims: bool = False) -> list[Prediction]:
        """Predictions for clips already read (`read`), generated as one batch; with
        `probabilities`, each carries the model's distribution over the labels at its answer; with
        `check_claims`, the voice levels its reasoning states against the measured sound
        (`check_measured_claims`)."""
        prompts = [self.policy.prompt(self._messages(media.present()), media) for _, media in clips]
        groups = self.policy.generate(prompts, 1, temperature=temperature, max_new_tokens=self.max_new_tokens,
                                      seed=seed) if prompts else []
        results = []
        for (name, media), prompt, (completion,) in zip(clips, prompts, groups):
            result = self._result(name, completion.text)
            result.faces = media.faces.to_json() if media.faces is not None else None
            result.statistics = statistics_used(self.policy, media) or None
            if probabilities:
                result.probabilities = self.answer_probabilities(prompt, completion.text)
            results.append(result)
        if check_claims:
            for result, (_, media) in zip(results, clips):
                self.check_measured_claims(result, media)
        return results

    @torch.no_grad()
    def answer_probabilities(self, prompt: Prompt, completion: str) -> dict[str, float]:
        """The model's probability of each label as its answer after this completion's reasoning:
        P(``label</answer>`` | prompt, completion up to ``<answer>``) for every label of the
        vocabulary, renormalised over the vocabulary. A completion without ``<answer>`` is
        continued with one, so the figures say what the model would have answered."""
        cut = completion.find("<answer>")
        head = completion[: cut + len("<answer>")] if cut >= 0 else completion.rstrip() + "\n<answer>"
        encode = lambda text: self.policy.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        head_ids = encode(head)
        candidates = [encode(f"{head}{label}</answer>") for label in self.vocab]
        # Where each candidate leaves the shared head: tokenisers may merge across the boundary.
        starts = [next((i for i, (a, b) in enumerate(zip(head_ids, ids)) if a != b), min(len(head_ids), len(ids)))
                  for ids in candidates]
        logprobs, _ = self.policy.completion_logprobs([prompt], candidates)  # [labels, Lc], 0 at padding
        after = torch.arange(logprobs.shape[1], device=logprobs.device)[None] >= \
            torch.tensor(starts, device=logprobs.device)[:, None]
        scores = (logprobs * after).sum(-1)  # [labels]: log P(label</answer> | head)
        shares = torch.softmax(scores.float(), 0).tolist()
        return {label: round(share, 6) for label, share in zip(self.vocab, shares)}

    def predict_clips(self, items: list[tuple[str, str | None, str | None]], modalities=None,
                      batch_size: int = 8, seed: int = 0, temperature: float = 0.0,
                      probabilities: bool = False, check_claims: bool = False) -> Iterator[Prediction]:
        """Predictions for (name, video path, audio path) triples, in order, showing the model
        `modalities` (default: the model's own); a clip that cannot be decoded yields a
        Prediction with `error` set."""
        modalities = self._modalities(modalities)
        for start in range(0, len(items), batch_size):
            read, failed = [], {}
            for position, (name, video, audio) in enumerate(items[start : start + batch_size]):
                try:
                    read.append((name, self.read(name, video, audio, modalities)))
                except R1OmniError as err:
                    failed[position] = Prediction.failed(name, str(err))
            made = iter(self.predict_media(read, seed, temperature, probabilities, check_claims))
            for position in range(len(items[start : start + batch_size])):
                yield failed[position] if position in failed else next(made)

    def predict_rows(self, rows: list[ClipRow], modalities=None, batch_size: int = 8,
                     probabilities: bool = False) -> Iterator[Prediction]:
        """Predictions for manifest rows, carrying each row's label and cues, and when the row
        carries a measurement (cues or measured voice levels), each claim judged against it."""
        items = [(r.id, r.video, r.audio) for r in rows]
        shown = self._modalities(modalities)
        for row, prediction in zip(rows, self.predict_clips(items, modalities, batch_size,
                                                            probabilities=probabilities)):
            prediction.label, prediction.cues = row.label, row.cues
            measured = measurement_of(row.cues, row.meta, shown)
            if measured is not None and prediction.error is None:
                prediction.measured, prediction.claims = measured.to_json(), claims_json(prediction.reasoning, measured)
            yield prediction

    def predict(self, path: str | Path, modalities=None, probabilities: bool = False,
                check_claims: bool = False) -> Prediction:
        """One file: a video (frames and soundtrack), an audio file, or a still image."""
        (result,) = self.predict_paths([path], modalities, probabilities=probabilities, check_claims=check_claims)
        if result.error:
            raise R1OmniError(result.error)
        return result

    def predict_paths(self, paths: Iterable[str | Path], modalities=None, batch_size: int = 8,
                      probabilities: bool = False, check_claims: bool = False) -> list[Prediction]:
        items = [(str(path), *streams_of(path)) for path in media_paths(paths)]
        return list(self.predict_clips(items, modalities, batch_size, probabilities=probabilities,
                                       check_claims=check_claims))


def load_model(directory: str | Path, prompt: str | None = None, labels: str | None = None, device: str = "auto",
               dtype: str = "auto", **settings) -> Predictor:
    """A saved r1omni model, or a released HumanOmni/R1-Omni folder, ready to predict:
    ``load_model(DIR).predict("clip.mp4")``. `prompt` and `labels` default to the model's training
    task; `device`/`dtype` as `r1omni.models.load_policy` (auto: CUDA in bfloat16 when present,
    else the CPU in float32). `settings` are the `Predictor`'s, and the model loading options of
    released folders (`r1omni.models.loading_options()`: ``bert_tokenizer``, ``slow_fast`` …)."""
    loading = {option.name for option in loading_options()}
    options = {name: settings.pop(name) for name in list(settings) if name in loading}
    return Predictor(load_policy(directory, device, dtype, **options), prompt, labels, **settings)
