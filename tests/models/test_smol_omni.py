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
    assert smol.towers["audio"].config["clip_frames"] and smol.towers["video"].config["kind"] == "face_cnn"
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
    assert torch.equal(again.towers["video"].conv_1[2].running_var, smol.towers["video"].conv_1[2].running_var)
