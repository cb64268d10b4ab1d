"""Real faces and real voices through the whole path, on talking-face clips ASSEMBLED for the test
(r1omni.data.assembled: CK+ face sequences muxed with Emo-DB speech of the same emotion; not
recorded audio-visual speech, none being available): laid out as RAVDESS, read by its adapter,
then `r1omni predict` and `r1omni eval --ablate` with a tiny model whose face tower finds faces."""

import json
from pathlib import Path

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


def test_pictures_without_a_usable_face_are_predicted_and_counted_never_a_crash(face_model, tmp_path):
    """No face, a tiny face, several faces, a grey and a rotated picture, a 4K frame: each gets a
    prediction, and its face report says what the search found (docs/input.md, 'Faces')."""
    from PIL import Image

    from corpora import shared_data

    face = Image.open(sorted((shared_data("ckplus48") / "happy").glob("*.png"))[0]).convert("RGB")

    def picture(name, size, faces=(), grey=False):
        frame = Image.new("RGB", size, (90, 110, 100))
        for x, y, side, angle in faces:
            frame.paste(face.resize((side, side)).rotate(angle), (x, y))
        frame = frame.convert("L").convert("RGB") if grey else frame
        frame.save(tmp_path / name)
        return tmp_path / name

    pictures = {"none.png": picture("none.png", (640, 480)),
                "tiny.png": picture("tiny.png", (1920, 1080), [(900, 500, 30, 0)]),
                "several.png": picture("several.png", (640, 480), [(40, 60, 110, 0), (330, 100, 220, 0)]),
                "grey.png": picture("grey.png", (640, 480), [(220, 140, 170, 0)], grey=True),
                "rotated.png": picture("rotated.png", (640, 480), [(250, 150, 180, 90)]),
                "4k.png": picture("4k.png", (3840, 2160), [(1500, 600, 700, 0)])}
    out = tmp_path / "preds.jsonl"
    assert main(["predict", *map(str, pictures.values()), "--model", str(face_model), "--out", str(out),
                 "--max-new-tokens", "2"]) == 0
    found = {Path(p["id"]).name: p for p in map(json.loads, out.read_text().splitlines())}
    assert all(p["error"] is None for p in found.values())
    statuses = {name: p["faces"]["statuses"] for name, p in found.items()}
    assert statuses == {"none.png": ["none"], "tiny.png": ["none"], "several.png": ["face"], "grey.png": ["face"],
                        "rotated.png": ["none"], "4k.png": ["face"]}
    assert found["several.png"]["faces"]["most_faces"] == 2


def test_sft_then_grpo_over_faces_voices_and_both_in_the_same_batches(talking_faces, face_model, tmp_path):
    """One run over rows with a face image only, speech only, or both, mixed within its batches."""
    from r1omni.data import write_manifest
    from r1omni.data.manifest import ClipRow
    from r1omni.train.config import load_config
    from r1omni.train.stages import train

    from corpora import shared_data

    ck = scan_dataset("ckplus", shared_data("ckplus48")).rows
    voices = scan_dataset("emodb", shared_data("emodb")).rows
    av = scan_dataset("ravdess", talking_faces[0] / "ravdess").rows
    rows = ([ClipRow(f"face{i}", r.label, "ckplus", video=r.video) for i, r in enumerate(ck[::200])]
            + [ClipRow(f"voice{i}", r.label, "emodb", audio=r.audio) for i, r in enumerate(voices[::120])]
            + [ClipRow(f"both{i}", r.label, "ravdess", video=r.video, audio=r.audio) for i, r in enumerate(av[:3])])
    rows = [r for r in rows if r.label != "contempt"]
    write_manifest(rows, tmp_path / "mixed.jsonl")
    common = {"data.train": tmp_path / "mixed.jsonl", "data.prompt": "mixed", "data.labels": "fer2013+emodb",
              "data.modalities": "[video, audio]", "train.batch_size": 8, "train.micro_batch_size": 8,
              "train.max_steps": 2, "train.lr": 1e-3, "train.scheduler": "constant", "grpo.num_generations": 4,
              "grpo.max_completion_length": 6}

    def config(kind, model, out, **extra):
        items = {**common, "model.path": model, "train.output_dir": out, **extra}
        return load_config(None, [f"{k}={v}" for k, v in items.items()], kind=kind)

    final = train(config("sft", face_model, tmp_path / "sft", **{"sft.target": "label"}))
    train(config("grpo", final, tmp_path / "grpo"))
    for stage in ("sft", "grpo"):
        metrics = [json.loads(line) for line in (tmp_path / stage / "metrics.jsonl").read_text().splitlines()]
        assert len(metrics) == 2 and all(m["loss"] == m["loss"] for m in metrics)  # finite
    assert main(["predict", str(ck[0].video), str(voices[0].audio), "--model", str(tmp_path / "grpo" / "final"),
                 "--max-new-tokens", "4", "--out", str(tmp_path / "p.jsonl")]) == 0
