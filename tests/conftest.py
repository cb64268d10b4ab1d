"""Shared fixtures: small media files written with PyAV whose content is known exactly."""

import pytest

from r1omni.media.encode import write_audio, write_video

from media_helpers import FPS, SAMPLE_RATE, TONE_HZ, index_frame, tone


@pytest.fixture
def make_clip(tmp_path):
    """make_clip(name, seconds, audio, gop, width, height, faststart) -> Path of an H.264+AAC mp4."""

    def make(name="clip.mp4", seconds=4.0, audio=True, gop=None, width=64, height=48, faststart=False):
        frames = (index_frame(i, height, width) for i in range(int(seconds * FPS)))
        sound = tone(seconds) if audio else None
        return write_video(tmp_path / name, frames, fps=FPS, audio=sound, sample_rate=SAMPLE_RATE,
                           gop=gop, faststart=faststart)

    return make


@pytest.fixture
def make_audio(tmp_path):
    def make(name="tone.wav", seconds=2.0, rate=SAMPLE_RATE, hz=TONE_HZ):
        return write_audio(tmp_path / name, tone(seconds, hz, rate), rate)

    return make


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory):
    """A tiny synthetic world on disk: 12 cold-start, 12 rl and 4 val clips."""
    from r1omni.data.synth import WorldConfig, write_world

    out = tmp_path_factory.mktemp("world")
    write_world(WorldConfig(seed=3, sizes={"coldstart": 12, "rl": 12, "val": 4}), out,
                splits=("coldstart", "rl", "val"), workers=1)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny nano model, saved (its trainable towers make every training path run)."""
    import torch

    from r1omni.models import ComposedPolicy

    torch.manual_seed(0)
    return ComposedPolicy.tiny_variants()["nano"]().save_pretrained(tmp_path_factory.mktemp("model") / "nano")


@pytest.fixture(scope="session")
def talking_faces(tmp_path_factory):
    """Talking-face clips ASSEMBLED from CK+ face sequences and Emo-DB speech of the same emotion
    (r1omni.data.assembled; not recorded), one per shared emotion, laid out as RAVDESS: (root, files)."""
    from r1omni.data import scan_dataset
    from r1omni.data.assembled import assemble_talking_faces

    from corpora import shared_data

    root = tmp_path_factory.mktemp("talking")
    faces = scan_dataset("ckplus", shared_data("ckplus48")).rows
    voices = scan_dataset("emodb", shared_data("emodb")).rows
    return root, assemble_talking_faces(faces, voices, root / "ravdess", per_emotion=1)


@pytest.fixture(scope="session")
def face_model(tmp_path_factory):
    """A tiny saved model that reads faces: a small LM, PyEmotion's face CNN (finding faces), a mel tower."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from r1omni.models.composed import composed
    from r1omni.models.tokenizer import TINY_CORPUS, train_nano_tokenizer
    from r1omni.models.towers import FaceCNN, MelCNN

    torch.manual_seed(0)
    tokenizer = train_nano_tokenizer(TINY_CORPUS, 300)
    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2))
    policy = composed(lm, tokenizer, vision=FaceCNN.from_pyemotion({"crop": 1.0, "find_face": True}),
                      audio=MelCNN({"width": 32}), frame_size=96, num_frames=4, projector_hidden=32,
                      frozen=("video",))
    return policy.save_pretrained(tmp_path_factory.mktemp("model") / "face-model")
