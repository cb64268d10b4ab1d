"""Tiny policies built from configs: a nano policy and a composed Qwen2 + SigLIP + Whisper one."""

import pytest
import torch

from r1omni.models import composed, nano
from r1omni.models.tokenizer import train_nano_tokenizer

CORPUS = [
    "<think>The brows are lowered and the voice is loud.</think>\n<answer>angry</answer>",
    "<think>A smile and raised cheeks; lively intonation.</think>\n<answer>happy</answer>",
    "As an emotional recognition expert; throughout the video, which emotion conveyed by the characters "
    "is the most obvious to you? Output the thinking process in <think> </think> and final emotion in "
    "<answer> </answer> tags.",
    "sad neutral surprise disgust fear trembling breathy pauses",
] * 20


@pytest.fixture(scope="session")
def nano_policy():
    torch.manual_seed(0)
    lm = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    return nano(CORPUS, vocab_size=400, lm=lm, vision={"width": 32}, audio={"width": 32}, projector_hidden=64).eval()


def tiny_composed(**overrides):
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    torch.manual_seed(0)
    tokenizer = train_nano_tokenizer(CORPUS, 400)
    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))
    vision = SiglipVisionModel(SiglipVisionConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2,
                                                  num_attention_heads=2, intermediate_size=32))
    audio = WhisperEncoder(WhisperConfig(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
                                         num_mel_bins=80, max_source_positions=1500))
    settings = dict(vision_pool=2, frame_size=32, num_frames=2, projector_hidden=32, **overrides)
    return composed(lm, tokenizer, vision, audio, **settings).eval()


@pytest.fixture(scope="session")
def composed_policy():
    return tiny_composed()


@pytest.fixture
def make_composed():
    """A fresh tiny composed policy, for tests that change it."""
    return tiny_composed
