"""PyEmotion's face CNN as a vision tower: its weights load as shipped, it computes what
PyEmotion's own network computes, and a policy with it saves and rebuilds in a new process."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from r1omni.models.towers import FaceCNN, build_tower


def pyemotion_network():
    """PyEmotion's NetworkV2 from the installed package's networks.py (which imports only torch)."""
    folder = Path(importlib.util.find_spec("PyEmotion").origin).parent
    spec = importlib.util.spec_from_file_location("pyemotion_networks", folder / "networks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    network = module.NetworkV2(in_c=1, nl=32, out_f=7)
    saved = torch.load(folder / "model" / "main_model.pkl", map_location="cpu", weights_only=True)
    network.load_state_dict(saved["network"])
    return network.eval()


def test_shipped_weights_compute_what_pyemotion_computes():
    tower = FaceCNN.from_pyemotion()
    faces = torch.rand(3, 1, 48, 48) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(tower.expression_logits(faces), pyemotion_network()(faces), atol=1e-6)
        assert tower(faces).shape == (3, 256)


def test_frames_become_grey_centre_crops_of_48_px():
    tower = build_tower({"kind": "face_cnn", "crop": 0.5}, "video")
    frames = np.zeros((2, 112, 112, 3), np.uint8)
    frames[:, 28:84, 28:84] = 255  # a white centre square: exactly the 50% crop
    faces = tower.preprocess(frames)
    assert faces.shape == (2, 1, 48, 48) and torch.allclose(faces, torch.ones_like(faces), atol=1e-3)


def test_a_policy_with_the_face_tower_rebuilds_in_a_new_process(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from r1omni.models import ComposedPolicy
    from r1omni.models.composed import composed
    from r1omni.models.tokenizer import TINY_CORPUS, train_nano_tokenizer

    torch.manual_seed(0)
    tokenizer = train_nano_tokenizer(TINY_CORPUS, 300)
    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2))
    policy = composed(lm, tokenizer, vision=FaceCNN.from_pyemotion(), frame_size=112, num_frames=2,
                      projector_hidden=32)
    assert isinstance(policy, ComposedPolicy) and not policy.towers["video"].training
    policy.save_pretrained(tmp_path / "model")
    probe = ("import torch; from r1omni.models import OmniPolicy; p = OmniPolicy.from_pretrained(r'%s'); "
             "assert not p.towers['video'].training; "
             "print(float(p.towers['video'].conv_1[2].running_mean.sum()))" % (tmp_path / "model"))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = float(policy.towers["video"].conv_1[2].running_mean.sum())
    assert abs(float(done.stdout.strip().splitlines()[-1]) - expected) < 1e-4
