"""Real faces and real voices through the whole path, on talking-face clips ASSEMBLED for the test
(r1omni.data.assembled: CK+ face sequences muxed with Emo-DB speech of the same emotion; not
recorded audio-visual speech, none being available): laid out as RAVDESS, read by its adapter,
then `r1omni predict` and `r1omni eval --ablate` with a tiny model whose face tower finds faces."""

import json

from r1omni.cli import main
from r1omni.data import read_manifest, scan_dataset
from r1omni.data.assembled import RAVDESS_CODE
from r1omni.predict import load_model
from r1omni.serve.analysis import ServeLimits, analyse_clip


def test_assembled_clips_read_as_ravdess_with_faces_and_voices(talking_faces):
    root, written = talking_faces
    assert len(written) == len(RAVDESS_CODE)
    rows = scan_dataset("ravdess", root / "ravdess").rows
    assert sorted(r.label for r in rows) == sorted(RAVDESS_CODE)
    assert all(r.video == r.audio and r.meta["modality"] == "audio-video" for r in rows)


def test_predict_and_eval_ablate_answer_from_the_face_and_the_voice(talking_faces, face_model, tmp_path, capsys):
    root, written = talking_faces
    out = tmp_path / "preds.jsonl"
    assert main(["predict", str(written[0]), "--model", str(face_model), "--out", str(out),
                 "--max-new-tokens", "4"]) == 0
    (prediction,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert prediction["error"] is None
    assert prediction["faces"]["frames"] == 4 and prediction["faces"]["found"] == 4  # the face in every frame

    assert main(["data", "prepare", "--dataset", "ravdess", "--root", str(root / "ravdess"),
                 "--out", str(tmp_path / "av.jsonl")]) == 0
    assert len(read_manifest(tmp_path / "av.jsonl")) == len(written)
    assert main(["eval", "--manifest", str(tmp_path / "av.jsonl"), "--model", str(face_model), "--ablate",
                 "--labels", "ravdess", "--max-new-tokens", "4", "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(metrics) == {"video_audio", "video", "audio"}
    for setting in ("video_audio", "video"):
        assert metrics[setting]["n"] == len(written)
        assert metrics[setting]["faces"]["clips_with_face"] == len(written)
    assert metrics["audio"]["faces"] is None  # no picture shown, none searched
    assert "Face found (video_audio): in 5 of 5 clips" in (tmp_path / "eval" / "report.md").read_text()


def test_the_page_analysis_captions_each_frame_with_where_the_face_was(talking_faces, face_model):
    _, written = talking_faces
    view = analyse_clip(load_model(face_model, max_new_tokens=4), str(written[0]), None, "video_audio", ServeLimits())
    assert len(view.frames) == 4 and view.captions == ["face found"] * 4
    assert [caption for _, caption in view.gallery()] == view.captions
