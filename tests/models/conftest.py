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


QWEN_TOKENS = ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|VIDEO|>", "<|IMAGE|>", "<|vision_bos|>",
               "<|vision_eos|>"]


def tiny_qwen(**overrides):
    """Qwen2.5-Omni's thinker at toy widths, with a tokenizer holding its modality tokens."""
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    from r1omni.models.qwen_omni import from_thinker

    torch.manual_seed(0)
    tokenizer = train_nano_tokenizer(CORPUS, 400, QWEN_TOKENS)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_TOKENS}
    width = 32
    config = Qwen2_5OmniThinkerConfig(
        audio_config=dict(num_mel_bins=128, encoder_layers=1, encoder_attention_heads=2, d_model=16,
                          encoder_ffn_dim=32, output_dim=width, n_window=100, max_source_positions=1500),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=width,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[0]),
        text_config=dict(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]}),
        audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"], video_token_index=ids["<|VIDEO|>"],
        audio_start_token_id=ids["<|audio_bos|>"], audio_end_token_id=ids["<|audio_eos|>"],
        vision_start_token_id=ids["<|vision_bos|>"], vision_end_token_id=ids["<|vision_eos|>"],
    )
    thinker = Qwen2_5OmniThinkerForConditionalGeneration(config)
    return from_thinker(thinker, tokenizer, **{"num_frames": 4, **overrides}).eval()


@pytest.fixture(scope="session")
def qwen_policy():
    return tiny_qwen()


@pytest.fixture
def make_qwen():
    return tiny_qwen
