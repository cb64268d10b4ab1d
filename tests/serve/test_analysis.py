"""What the page shows, computed without a browser: one clip, a batch, limits, pictures."""

import csv
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from r1omni import load_model
from r1omni.errors import R1OmniError
from r1omni.media import SAMPLE_RATE
from r1omni.serve.analysis import BUSY, Deadline, ServeLimits, analyse_batch, analyse_clip
from r1omni.serve.examples import example_clips
from r1omni.serve.figures import log_spectrogram, spectrogram_image
from r1omni.serve.files import ServerFiles


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return load_model(tiny_model, labels="dfew", max_new_tokens=8)


def test_one_clip_gives_answer_reasoning_probabilities_frames_and_spectrogram(predictor, world_dir, tmp_path):
    clip = str(world_dir / "clips" / "val" / "val_000000.mp4")
    view = analyse_clip(predictor, clip, None, "video_audio", ServeLimits())
    assert set(view.prediction.probabilities) == set(predictor.vocab)
    assert abs(sum(view.prediction.probabilities.values()) - 1) < 1e-4
    assert len(view.frames) == predictor.policy.config.num_frames
    assert view.spectrogram.ndim == 3 and view.spectrogram.shape[2] == 3
    gallery, spectrogram = view.pictures_in(tmp_path / "clip-1")  # files of this request's own, for the page
    assert len(gallery) == len(view.frames) and all(Path(path).read_bytes()[:4] == b"\x89PNG" for path, _ in gallery)
    assert Path(spectrogram).read_bytes()[:4] == b"\x89PNG"
    audio_only = analyse_clip(predictor, clip, None, "audio", ServeLimits())
    assert audio_only.frames == [] and audio_only.spectrogram is not None


def test_clip_errors_name_the_problem(predictor, world_dir, tmp_path):
    with pytest.raises(R1OmniError, match="upload or record"):
        analyse_clip(predictor, None, None, "video_audio", ServeLimits())
    clip = str(world_dir / "clips" / "val" / "val_000000.mp4")
    with pytest.raises(R1OmniError, match=r"val_000000.mp4: \d+ s long, over this server's cap of 1 s"):
        analyse_clip(predictor, clip, None, "video_audio", ServeLimits(max_seconds=1))
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    with pytest.raises(R1OmniError, match="broken.mp4: not a readable media file"):
        analyse_clip(predictor, str(broken), None, "video_audio", ServeLimits())


def test_batch_from_a_manifest_scores_and_writes_every_row(predictor, world_dir, tmp_path):
    rows = [json.loads(line) for line in (world_dir / "val.jsonl").read_text().splitlines()]
    for row in rows:
        shutil.copy(world_dir / row["video"], tmp_path / Path(row["video"]).name)
        row["video"] = row["audio"] = Path(row["video"]).name
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    rows.append({"id": "broken", "label": "sad", "dataset": "x", "video": str(broken)})
    rows.append({**rows[0], "id": "calm_one", "label": "calm"})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    seen = []
    view = analyse_batch(predictor, [], "m.jsonl", "video_audio", ServeLimits(), tmp_path / "out",
                         lambda done, total: seen.append((done, total)), ServerFiles(tmp_path))
    assert [p.id for p in view.predictions] == [r["id"] for r in rows[:-1]]  # calm: not a dfew label
    assert view.dropped_labels == {"calm": 1}
    assert [p.error is not None for p in view.predictions] == [False] * 4 + [True]
    assert view.scores.n == 4 and 0 <= view.scores.uar <= 1 and view.confusion_png.is_file()
    assert seen[-1] == (5, 5)
    written = [json.loads(line) for line in view.downloads[0].read_text().splitlines()]
    assert [r["id"] for r in written] == [p.id for p in view.predictions] and "probabilities" in written[0]
    assert len(list(csv.DictReader(view.downloads[1].open()))) == 5


def test_batch_finds_an_uploaded_manifests_media_among_the_uploads(predictor, world_dir, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    clips = sorted((world_dir / "clips" / "val").glob("*.mp4"))[:2]
    for clip in clips:
        shutil.copy(clip, uploads / clip.name)
    manifest = tmp_path / "elsewhere" / "labels.jsonl"
    manifest.parent.mkdir()
    rows = [{"id": c.stem, "label": "happy", "dataset": "x", "video": f"clips/{c.name}"} for c in clips]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    files = [str(uploads / c.name) for c in clips] + [str(manifest)]
    view = analyse_batch(predictor, files, None, "video", ServeLimits(), tmp_path / "out")
    assert [p.error for p in view.predictions] == [None, None] and view.scores.n == 2
    plain = analyse_batch(predictor, files[:2], None, "video", ServeLimits(), tmp_path / "out2")
    assert [p.id for p in plain.predictions] == [c.name for c in clips] and plain.scores is None
    with pytest.raises(R1OmniError, match="over this server's cap of 1 per batch"):
        analyse_batch(predictor, files[:2], None, "video", ServeLimits(max_batch_files=1), tmp_path / "out3")
    with pytest.raises(R1OmniError, match="no clips to analyse"):
        analyse_batch(predictor, [], None, "video", ServeLimits(), tmp_path / "out4")


def test_a_request_past_the_deadline_is_answered_with_an_error_and_stopped():
    deadline = Deadline(0.2)
    assert deadline.run(lambda x: x + 1, 1) == 2
    steps, ended = [], threading.Event()

    def batch(stopped):
        while not stopped():
            steps.append(1)
            time.sleep(0.05)
        ended.set()

    started = time.perf_counter()
    with pytest.raises(R1OmniError, match="longer than this server's 0 s limit .* and was stopped"):
        deadline.run(batch, stoppable=True)
    assert time.perf_counter() - started < 1.5
    assert ended.wait(2), "the overrunning work went on after its deadline"


def test_while_an_overrun_holds_the_worker_requests_are_answered_busy_at_once():
    deadline = Deadline(0.1)
    release, ran = threading.Event(), []
    try:
        with pytest.raises(R1OmniError, match="longer than"):
            deadline.run(release.wait)  # a forward pass that cannot be stopped
        started = time.perf_counter()
        with pytest.raises(R1OmniError, match=BUSY):
            deadline.run(ran.append, "refused")
        assert time.perf_counter() - started < 0.05 and ran == []
    finally:
        release.set()
    time.sleep(0.2)
    assert deadline.run(ran.append, "later") is None and ran == ["later"]


def test_a_request_queued_past_its_deadline_never_runs():
    deadline = Deadline(0.1, waiting=2)
    release, ran = threading.Event(), []
    worker = threading.Thread(target=lambda: pytest.raises(R1OmniError, deadline.run, release.wait))
    try:
        worker.start()
        time.sleep(0.02)  # the first request holds the worker, not yet past its deadline
        with pytest.raises(R1OmniError, match="longer than"):
            deadline.run(ran.append, "queued")
    finally:
        release.set()
        worker.join()
    time.sleep(0.1)
    assert ran == []


def test_limits_must_be_positive():
    with pytest.raises(R1OmniError, match="must all be positive"):
        ServeLimits(timeout_s=0).validate()


def test_spectrogram_of_a_tone_peaks_at_its_frequency():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    decibels = log_spectrogram(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    bin_hz = SAMPLE_RATE / 400  # 25 ms windows
    assert decibels.mean(1).argmax() == round(1000 / bin_hz)
    assert spectrogram_image(np.zeros(100, np.float32)).shape[2] == 3


def test_examples_are_clips_of_the_synthetic_world(tmp_path):
    examples = example_clips(tmp_path)
    assert len(examples) == 4 and all(path.is_file() and label for path, label in examples)
    assert example_clips(tmp_path) == examples  # written once


def test_claims_are_marked_in_the_reasoning_and_tabulated():
    from r1omni.serve.analysis import FAILS, HOLDS, claim_rows, claim_segments

    reasoning = "The voice is low-pitched and loud. It is loud."
    claims = [{"text": "low-pitched", "start": 13, "end": 24, "claim": "low-pitched", "holds": True, "why": "true",
               "measured": "low-pitched", "value": 20.5},
              {"text": "loud", "start": 29, "end": 33, "claim": "loud", "holds": False, "why": "measured quiet",
               "measured": "quiet", "value": 0.1},
              {"text": "smile", "start": 0, "end": 0, "claim": "smile", "holds": None, "why": "not measured"}]
    pieces = claim_segments(reasoning, claims)
    assert "".join(text for text, _ in pieces) == reasoning
    assert [(t, m) for t, m in pieces if m] == [("low-pitched", HOLDS), ("loud", FAILS)]
    assert claim_rows(claims)[1] == ["loud", "loud", "quiet (0.10)", "does not hold (measured quiet)"]
    assert claim_segments(None, None) == [] and claim_rows(None) == []


def test_a_speech_model_clip_carries_its_checked_claims(tiny_model, tmp_path):
    from voice_levels import voice, with_voice_levels

    speech = load_model(with_voice_levels(tiny_model, tmp_path / "speech"), max_new_tokens=6)
    view = analyse_clip(speech, None, str(voice(tmp_path / "v.wav")), "audio", ServeLimits())
    assert view.prediction.measured["levels"]["pitch"] == 0 and isinstance(view.prediction.claims, list)
    plain = analyse_clip(load_model(tiny_model, max_new_tokens=6), None, str(voice(tmp_path / "w.wav")), "audio",
                         ServeLimits())
    assert plain.prediction.claims is None  # a model without measured rationales: nothing to check


def test_the_page_says_whose_feature_statistics_a_prediction_used(world_dir, tmp_path):
    import torch

    from r1omni.data import read_manifest
    from r1omni.models import ComposedPolicy
    from r1omni.models.standardize import fit_standardizers
    from r1omni.serve.app import _answer_markdown

    torch.manual_seed(0)
    policy = ComposedPolicy.tiny_variants()["smol-shape"]()
    rows = read_manifest(world_dir / "val.jsonl")[:3]
    fit_standardizers(policy, [policy.read_clip(None, r.audio, ("audio",)) for r in rows])
    policy.config.task = {"prompt": "options", "labels": "emodb", "modalities": ["audio"],
                          "feature_statistics": "emodb 408, ravdess 444"}
    speech = load_model(policy.save_pretrained(tmp_path / "speech"), max_new_tokens=4)
    view = analyse_clip(speech, None, rows[0].audio, "audio", ServeLimits())
    assert view.prediction.statistics == {"audio": "the model's training clips (emodb 408, ravdess 444)"}
    assert _answer_markdown(view.prediction).endswith(
        "audio features standardised by the statistics of the model's training clips (emodb 408, ravdess 444)")
