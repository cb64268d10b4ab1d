"""Real faces and real voices through the whole path, on talking-face clips ASSEMBLED for the test
(r1omni.data.assembled: CK+ face sequences muxed with Emo-DB speech of the same emotion; not
recorded audio-visual speech, none being available): laid out as RAVDESS, read by its adapter,
then `r1omni predict` and `r1omni eval --ablate` with a tiny model whose face tower finds faces."""

import json

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from corpora import shared_data
from r1omni.cli import main
from r1omni.data import read_manifest, scan_dataset
from r1omni.data.assembled import RAVDESS_CODE, assemble_talking_faces
from r1omni.models.composed import composed
from r1omni.models.tokenizer import TINY_CORPUS, train_nano_tokenizer
from r1omni.models.towers import FaceCNN, MelCNN


@pytest.fixture(scope="module")
def talking_faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("talking")
    faces = scan_dataset("ckplus", shared_data("ckplus48")).rows
    voices = scan_dataset("emodb", shared_data("emodb")).rows
    written = assemble_talking_faces(faces, voices, root / "ravdess", per_emotion=1)
    return root, written


@pytest.fixture(scope="module")
def face_model(tmp_path_factory):
    """A tiny LM with PyEmotion's face CNN (finding faces) and a small mel tower."""
    torch.manual_seed(0)
    tokenizer = train_nano_tokenizer(TINY_CORPUS, 300)
    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2))
    policy = composed(lm, tokenizer, vision=FaceCNN.from_pyemotion({"crop": 1.0, "find_face": True}),
                      audio=MelCNN({"width": 32}), frame_size=96, num_frames=4, projector_hidden=32,
                      frozen=("video",))
    folder = tmp_path_factory.mktemp("model") / "face-model"
    policy.save_pretrained(folder)
    return folder


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
