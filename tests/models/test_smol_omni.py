"""The smol-omni preset: built from installed packages only, it generates and survives a save."""

import pytest
import torch

from r1omni.models import OmniPolicy, build_preset
from r1omni.prompts import build_messages

pytestmark = pytest.mark.slow  # loads 135 M parameters


@pytest.fixture(scope="module")
def smol():
    return build_preset("smol-omni")


def test_parts_are_the_packaged_models(smol):
    assert smol.lm.config.model_type == "llama" and smol.lm.config.num_hidden_layers == 30
    assert smol.towers["audio"].config["clip_frames"] and smol.towers["video"].config["kind"] == "face_net"
    assert set(smol.config.frozen) >= {"video", "audio"}
    assert "quantization_config" not in smol.lm.config.to_dict()


def test_generates_from_a_clip_and_reloads(smol, tmp_path, make_clip):
    media = smol.read_clip(str(make_clip(seconds=1.0)), str(make_clip("b.mp4", seconds=1.0)))
    prompt = smol.prompt(build_messages("r1omni", media.present()), media)
    (group,) = smol.generate([prompt], 1, temperature=0.0, max_new_tokens=6, seed=0)
    assert group[0].text
    smol.save_pretrained(tmp_path / "smol")
    again = OmniPolicy.from_pretrained(tmp_path / "smol")
    (repeat,) = again.generate([again.prompt(build_messages("r1omni", media.present()), media)], 1,
                               temperature=0.0, max_new_tokens=6, seed=0)
    assert repeat[0].text == group[0].text
    assert torch.equal(again.towers["video"].features[1].running_var, smol.towers["video"].features[1].running_var)


def test_finds_faces_and_takes_a_trained_face_tower(smol, tmp_path):
    """Frames are cropped to the face (the tower declares it), and `--vision DIR` swaps in a face
    tower from r1omni pretrain-face (here an untrained one, saved and loaded as that command does)."""
    from r1omni.models.towers import FaceNet, save_tower

    assert smol.finds_faces() and smol.media_settings().endswith("|faces")
    tower = FaceNet({"width": 8})
    save_tower(tower, tmp_path / "tower")
    swapped = build_preset("smol-omni", vision=str(tmp_path / "tower"))
    assert swapped.towers["video"].config["kind"] == "face_net" and swapped.finds_faces()
    assert torch.equal(swapped.towers["video"].head[1].weight, tower.head[1].weight)
    assert build_preset("smol-omni", vision="pyemotion").towers["video"].config["kind"] == "face_cnn"


def test_a_face_crop_reaches_the_tower_as_it_was_trained(smol, tmp_path):
    """A 48 px face crop (FER-2013, CK+) is read at the tower's own size, pixel for pixel as
    `pretrain-face` reads its training faces: read larger, it was blown up and shrunk back (blurred)."""
    import numpy as np
    from PIL import Image

    from r1omni.pretrain.face_tower import face_arrays

    face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    Image.fromarray(face).save(tmp_path / "face.png")
    media = smol.read_clip(str(tmp_path / "face.png"), None, ("video",))
    row = type("Row", (), {"id": "face", "video": str(tmp_path / "face.png")})()
    assert media.frames.shape == (1, 48, 48, 3)
    assert np.array_equal(media.frames[0], face_arrays([row])[0])
    assert np.array_equal(media.frames[0, :, :, 0], face)
