"""Pretrained towers as issue 15 met them: BatchNorm buffers in the fingerprint, frozen towers
kept in eval mode, encoder-only Whisper folders, and pooling only the clip's own audio frames."""

import numpy as np
import pytest
import torch
from torch import nn
from transformers import WhisperConfig, WhisperModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from r1omni.errors import ConfigError
from r1omni.models.composed import load_whisper_encoder
from r1omni.models.towers import WhisperAudioTower, fingerprint

TINY = dict(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32, num_mel_bins=80,
            max_source_positions=1500, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32)


def test_fingerprint_covers_batchnorm_buffers():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    before = fingerprint(net, {"kind": "cnn"})
    net[1].num_batches_tracked += 1  # a 0-dim buffer
    assert fingerprint(net, {"kind": "cnn"}) != before


def test_frozen_towers_stay_in_eval_mode(composed_policy):
    composed_policy.train()
    try:
        assert composed_policy.lm.training
        frozen = composed_policy.frozen_encoders().values()
        assert frozen and not any(t.training for t in frozen)
        assert all(not m.training for t in composed_policy.frozen_encoders().values() for m in t.modules())
    finally:
        composed_policy.eval()


def test_encoder_only_and_whole_whisper_folders_load_their_encoder(tmp_path):
    torch.manual_seed(0)
    whole = WhisperModel(WhisperConfig(**TINY))
    whole.save_pretrained(tmp_path / "whole")
    whole.get_encoder().save_pretrained(tmp_path / "encoder")
    reference = whole.get_encoder().state_dict()
    for folder in ("whole", "encoder"):
        loaded = load_whisper_encoder(tmp_path / folder).state_dict()
        assert all(torch.equal(loaded[k], reference[k]) for k in reference), folder
    with pytest.raises(ConfigError, match="cannot load a Whisper model"):
        load_whisper_encoder(tmp_path / "missing")


def test_clip_frames_pools_only_the_clips_own_frames():
    torch.manual_seed(0)
    encoder = WhisperEncoder(WhisperConfig(**TINY)).eval()
    audio = np.sin(np.arange(16_000) / 7).astype(np.float32)  # 1 s: 100 mel frames, 50 encoder frames
    padded = WhisperAudioTower({"pool": 3}, model=encoder)
    clipped = WhisperAudioTower({"pool": 3, "clip_frames": True}, model=encoder)
    with torch.no_grad():
        full = padded(padded.preprocess(audio))
        short = clipped(clipped.preprocess(audio))
    assert full.shape == (500, 16) and short.shape == (17, 16)  # ceil(50 / 3)
    assert torch.allclose(short[:16], full[:16], atol=1e-6)  # the same frames, pooled the same way
    assert padded.identity() != clipped.identity()  # cached features of one are not the other's


def test_summary_appends_the_mean_of_the_clips_frames():
    torch.manual_seed(0)
    encoder = WhisperEncoder(WhisperConfig(**TINY)).eval()
    audio = np.sin(np.arange(16_000) / 5).astype(np.float32)  # 1 s: 50 encoder frames
    clipped = WhisperAudioTower({"pool": 3, "clip_frames": True}, model=encoder)
    summarised = WhisperAudioTower({"pool": 3, "clip_frames": True, "summary": True}, model=encoder)
    with torch.no_grad():
        tokens = summarised(summarised.preprocess(audio))
        frames = encoder(clipped.preprocess(audio)[:-1][None]).last_hidden_state[0, :50]
        pooled = clipped(clipped.preprocess(audio))
    assert tokens.shape == (18, 16) and torch.equal(tokens[:17], pooled)
    assert torch.allclose(tokens[17], frames.mean(0), atol=1e-6)


def test_without_frames_the_utterance_token_is_all_the_lm_reads():
    torch.manual_seed(0)
    encoder = WhisperEncoder(WhisperConfig(**TINY)).eval()
    audio = np.sin(np.arange(16_000) / 5).astype(np.float32)  # 1 s: 50 encoder frames
    summarised = WhisperAudioTower({"pool": 3, "clip_frames": True, "summary": True}, model=encoder)
    alone = WhisperAudioTower({"pool": 3, "clip_frames": True, "summary": True, "frames": False}, model=encoder)
    with torch.no_grad():
        tokens = summarised(summarised.preprocess(audio))
        utterance = alone(alone.preprocess(audio))
    assert utterance.shape == (1, 16) and torch.equal(utterance[0], tokens[-1])
    assert alone.identity() != summarised.identity()  # cached features of one are not the other's


def test_layers_keeps_the_first_encoder_layers_and_reads_the_last_kept_ones_output(tmp_path):
    """`layers: k` is the k-th layer's output before the final LayerNorm (the full encoder's
    hidden state k), computed by k layers only, and survives a save of the tower's config and weights."""
    torch.manual_seed(0)
    full = WhisperEncoder(WhisperConfig(**{**TINY, "encoder_layers": 3})).eval()
    truncated = WhisperAudioTower({"pool": 3, "clip_frames": True, "summary": True, "layers": 2},
                                  model=WhisperEncoder(WhisperConfig(**{**TINY, "encoder_layers": 3})).eval())
    truncated.model.load_state_dict(full.state_dict(), strict=False)  # the same weights for the kept layers
    audio = np.sin(np.arange(16_000) / 5).astype(np.float32)  # 1 s: 50 encoder frames
    inputs = truncated.preprocess(audio)
    with torch.no_grad():
        tokens = truncated(inputs)
        second = full(inputs[:-1][None], output_hidden_states=True).hidden_states[2][0, :50]  # [50, D]
    assert len(truncated.model.layers) == 2 and truncated.config["hf_config"]["encoder_layers"] == 2
    assert torch.allclose(tokens[-1], second.mean(0), atol=1e-5)
    rebuilt = WhisperAudioTower(truncated.config)  # as a saved policy rebuilds it
    rebuilt.load_state_dict(truncated.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt(inputs), tokens)
    with pytest.raises(ConfigError, match="layers must be 1 to 3, got 4"):
        WhisperAudioTower({"layers": 4}, model=WhisperEncoder(WhisperConfig(**{**TINY, "encoder_layers": 3})))
