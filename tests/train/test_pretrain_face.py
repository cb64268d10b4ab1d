"""r1omni's own face tower: `r1omni pretrain-face` trains it on labelled face images, keeps the best
validation epoch, saves a folder that loads back, the tower learns on real faces, and it reads
every face histogram-equalised (as FER-2013 distributes its faces) unless trained without."""

import json

import numpy as np
import pytest
import torch

from r1omni.cli import main
from r1omni.data import scan_dataset, write_manifest
from r1omni.errors import ConfigError
from r1omni.models.towers import FaceNet, equalized_histograms, load_tower
from r1omni.pretrain.face_tower import face_arrays, train_face_tower

from corpora import shared_data


@pytest.fixture(scope="module")
def ck_rows():
    rows = [r for r in scan_dataset("ckplus", shared_data("ckplus48")).rows if r.label in ("happy", "surprise")]
    return [r for r in rows if r.fold <= 8], [r for r in rows if r.fold > 8]  # subjects apart


def test_learns_happy_from_surprise_on_subjects_it_never_saw(ck_rows):
    train, val = ck_rows
    tower, record = train_face_tower(face_arrays(train), [r.label for r in train], face_arrays(val),
                                     [r.label for r in val], ("happy", "surprise"), epochs=12, width=8,
                                     say=lambda text: None)
    assert [e["epoch"] for e in record["epochs"]] == list(range(1, 13))
    assert record["best_val_uar"] == max(e["val_uar"] for e in record["epochs"]) >= 0.8
    with torch.no_grad():
        assert tower(tower.preprocess(face_arrays(val[:3]))).shape == (3, 256)


def test_equalisation_is_opencvs_and_makes_posed_faces_look_like_web_faces():
    cv2 = pytest.importorskip("cv2")
    grey = lambda rows: face_arrays(rows)[..., 0]  # [N, 48, 48] uint8  # noqa: E731
    ck = grey([r for r in scan_dataset("ckplus", shared_data("ckplus48")).rows][::40])
    fer = grey([r for r in scan_dataset("fer2013", shared_data("fer2013")).rows if r.split == "test"][::150])
    ours = equalized_histograms(torch.from_numpy(ck).float()[:, None] / 255)[:, 0] * 255  # [N, 48, 48]
    assert np.array_equal(ours.round().numpy().astype(np.uint8), np.stack([cv2.equalizeHist(face) for face in ck]))
    # CK+'s faces come with their own brightness and contrast; FER-2013's come equalised already
    spread = lambda faces: faces.reshape(len(faces), -1).std(1)  # noqa: E731
    assert spread(ck).min() < 50 and spread(fer).min() > 65
    assert spread(ours.numpy()).min() > 65
    flat = torch.full((1, 1, 4, 4), 77 / 255)
    assert torch.equal(equalized_histograms(flat), flat)  # one level: nothing to spread


def test_a_tower_reads_the_same_face_alike_at_any_brightness_and_contrast_when_it_equalises():
    face = np.arange(0, 256, 4, dtype=np.uint8)[None, :48, None].repeat(48, 0)[None].repeat(3, -1)  # [1, 48, 48, 3]
    dim = (face // 2 + 40).astype(np.uint8)  # every level kept apart: equalisation undoes it
    for equalize in (True, False):
        tower = FaceNet({"width": 8, "equalize": equalize})
        same = torch.allclose(tower.preprocess(face), tower.preprocess(dim), atol=1e-6)
        assert same == equalize
    assert FaceNet({}).config["equalize"] is False  # a tower saved before equalising kept reading faces as they came


def test_cli_saves_a_tower_that_loads_refuses_to_overwrite_and_refuses_unknown_labels(ck_rows, tmp_path, capsys):
    train, val = ck_rows
    write_manifest(train, tmp_path / "train.jsonl")
    write_manifest(val, tmp_path / "val.jsonl")
    assert main(["pretrain-face", "--train", str(tmp_path / "train.jsonl"), "--val", str(tmp_path / "val.jsonl"),
                 "--labels", "ckplus", "--epochs", "1", "--width", "8", "--out", str(tmp_path / "tower")]) == 0
    tower = load_tower(tmp_path / "tower")
    assert isinstance(tower, FaceNet) and tower.wants_face and not tower.training
    record = json.loads((tmp_path / "tower" / "training.json").read_text())
    assert record["train_faces"] == len(train) and record["classes"][0] == "angry"
    assert tower.config["equalize"]  # by default; --no-equalize trains and reads faces as they come
    assert main(["pretrain-face", "--train", str(tmp_path / "train.jsonl"), "--val", str(tmp_path / "val.jsonl"),
                 "--labels", "ckplus", "--epochs", "1", "--width", "8", "--no-equalize", "--out",
                 str(tmp_path / "as-they-come")]) == 0
    assert load_tower(tmp_path / "as-they-come").config["equalize"] is False
    weights = (tmp_path / "tower" / "tower.safetensors").read_bytes()
    assert main(["pretrain-face", "--train", str(tmp_path / "train.jsonl"), "--val", str(tmp_path / "val.jsonl"),
                 "--labels", "ckplus", "--epochs", "1", "--width", "8", "--out", str(tmp_path / "tower")]) == 2
    assert "is not empty" in capsys.readouterr().err  # a second run never overwrites the first's tower
    assert (tmp_path / "tower" / "tower.safetensors").read_bytes() == weights
    with pytest.raises(ConfigError, match="not among the tower's classes"):
        train_face_tower(np.zeros((64, 48, 48, 3), np.uint8), ["calm"] * 64, np.zeros((2, 48, 48, 3), np.uint8),
                         ["calm"] * 2, ("happy",), epochs=1, say=lambda text: None)
    with pytest.raises(ConfigError, match="not a saved tower"):
        load_tower(tmp_path)


def test_the_shipped_tower_recognises_real_faces_it_never_trained_on():
    """r1omni/assets/face_tower (FER-2013 training faces only): its own head on FER-2013's test
    faces, 40 a class (measured on all 3,589: UAR 61.6%; chance 14%), and on CK+'s posed faces,
    20 a class (measured on all 927: 69.2%; chance 17%)."""
    from r1omni.eval.metrics import uar
    from r1omni.models.presets import FACE_TOWER
    from r1omni.pretrain.face_tower import expression_predictions

    tower = load_tower(FACE_TOWER)
    labels = tower.config["labels"]

    def head_uar(rows, per_class: int) -> float:
        picked = [r for label in labels for r in [x for x in rows if x.label == label][:per_class]]
        predicted = expression_predictions(tower, tower.preprocess(face_arrays(picked)))
        return uar([r.label for r in picked], [labels[i] for i in predicted])

    assert head_uar([r for r in scan_dataset("fer2013", shared_data("fer2013")).rows if r.split == "test"], 40) >= 0.45
    assert head_uar(scan_dataset("ckplus", shared_data("ckplus48")).rows, 20) >= 0.5  # contempt: not a label
