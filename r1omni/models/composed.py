"""The composed backend: any Hugging Face causal LM + a vision tower + an audio tower + projectors.

A clip is encoded by modality towers and projected to the LM's width; a chat prompt's
``<video>`` / ``<audio>`` placeholders expand into those embeddings between start/end markers.
`nano` (from scratch, CPU-sized) and `composed` (pretrained parts, e.g. the paper's
HumanOmni-0.5B shape) build it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from r1omni.errors import ConfigError
from r1omni.models.base import ClipMedia, OmniPolicy, PolicyConfig, register_backend
from r1omni.models.shared_prefix import Prompt
from r1omni.models.standardize import FeatureStandardizer
from r1omni.models.tokenizer import MODALITY_MARKERS, TINY_CORPUS, add_chat_tokens, stop_token_ids, train_nano_tokenizer
from r1omni.models.towers import HFVisionTower, Tower, TowerFeatures, WhisperAudioTower, build_tower
from r1omni.prompts import PLACEHOLDERS

NANO_LM = dict(model_type="qwen2", hidden_size=256, intermediate_size=688, num_hidden_layers=4,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
               tie_word_embeddings=True, rope_theta=10000.0)


def _build_lm(config: PolicyConfig) -> nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    data = dict(config.lm)
    try:
        lm_config = AutoConfig.for_model(data.pop("model_type"), **data)
        return AutoModelForCausalLM.from_config(lm_config, attn_implementation=config.attn_implementation)
    except ValueError as err:
        raise ConfigError(f"cannot build the LM: {err}") from None


@register_backend("composed")
class ComposedPolicy(TowerFeatures, OmniPolicy):
    def __init__(self, config: PolicyConfig, tokenizer, lm: nn.Module | None = None,
                 towers: dict[str, Tower] | None = None):
        super().__init__()
        config.validate()
        config = copy.deepcopy(config)  # filled in below; the caller's stays as given
        self.config = config
        self.tokenizer = tokenizer
        self.lm = lm if lm is not None else _build_lm(config)
        towers = towers or {m: build_tower(c, m) for m, c in config.towers.items()}
        self.towers = nn.ModuleDict(towers)
        # The config records the parts as built (defaults filled in), so a saved policy rebuilds them.
        config.lm = {**self.lm.config.to_diff_dict(), "model_type": self.lm.config.model_type}
        config.towers = {m: t.config for m, t in self.towers.items()}
        width = self.lm.get_input_embeddings().embedding_dim
        self.projectors = nn.ModuleDict({m: self._projector(t.out_dim, width) for m, t in self.towers.items()})
        self.standardizers = nn.ModuleDict({m: FeatureStandardizer(self.towers[m].out_dim) for m in config.standardize})
        vocab = tokenizer.get_vocab()
        missing = [t for pair in MODALITY_MARKERS.values() for t in pair if t not in vocab]
        if missing:
            raise ConfigError(f"tokenizer lacks the modality markers {missing}; see add_chat_tokens")
        if len(tokenizer) > self.lm.get_input_embeddings().num_embeddings:
            raise ConfigError(f"tokenizer has {len(tokenizer)} tokens but the LM embeds only "
                              f"{self.lm.get_input_embeddings().num_embeddings}")
        self.markers = {m: (vocab[a], vocab[b]) for m, (a, b) in MODALITY_MARKERS.items()}
        self.stop_ids = stop_token_ids(tokenizer)
        self.finish_building()

    def _projector(self, tower_width: int, width: int) -> nn.Sequential:
        layers = [nn.Linear(tower_width, self.config.projector_hidden), nn.GELU(),
                  nn.Linear(self.config.projector_hidden, width)]
        if self.config.projector_norm:
            norm = nn.LayerNorm(width)
            with torch.no_grad():
                norm.weight.fill_(float(self.lm.get_input_embeddings().weight.std()))
            layers.append(norm)
        return nn.Sequential(*layers)

    # ------------------------------------------------------------------ the interface

    def adapters(self) -> list[nn.Module]:
        return list(self.projectors.values())

    def feature_standardizers(self) -> dict[str, nn.Module]:
        return dict(self.standardizers)

    def encode(self, media: ClipMedia) -> dict[str, torch.Tensor]:
        """Modality embeddings ``{modality: [T, H]}`` in the LM's width, for what the clip has."""
        embeddings = {}
        for modality in media.present():
            if modality in self.towers:
                features = self.tower_features(modality, media)  # [T, D]
                if modality in self.standardizers:
                    features = self.standardizers[modality](features.float(), media.statistics)
                embeddings[modality] = self.projectors[modality](features.to(self.lm.dtype))
        return embeddings

    def splice(self, text: str, embeddings: dict[str, torch.Tensor], messages: list[dict]) -> Prompt:
        """Each text piece tokenised on its own, each placeholder's embeddings wrapped in its
        modality's start and end marker tokens."""
        pieces: list[tuple[str, str]] = [("text", text)]  # (text, its words) or (media, modality)
        for modality, placeholder in PLACEHOLDERS.items():
            split = []
            for kind, value in pieces:
                if kind != "text" or placeholder not in value:
                    split.append((kind, value))
                    continue
                for i, part in enumerate(value.split(placeholder)):
                    if i:
                        split.append(("media", modality))
                    split.append(("text", part))
            pieces = split
        tensors = []
        for kind, value in pieces:
            if kind == "media":
                start, end = self.markers[value]
                tensors += [torch.tensor([start]), embeddings[value], torch.tensor([end])]
            elif value:
                tensors.append(torch.tensor(self.tokenizer(value, add_special_tokens=False)["input_ids"],
                                            dtype=torch.long))
        return self.join_pieces(tensors)

    @classmethod
    def tiny_variants(cls):
        return {"nano": _tiny_nano, "hf-towers": _tiny_hf_towers, "smol-shape": _tiny_smol_shape}


# ----------------------------------------------------------------------------- builders


def nano(corpus: Iterable[str], vocab_size: int = 4096, lm: dict | None = None, vision: dict | None = None,
         audio: dict | None = None, **config) -> ComposedPolicy:
    """A from-scratch policy small enough to train on two CPU cores: a Qwen2-style LM
    (hidden 256, 4 layers), a six-layer CNN frame encoder, a convolutional log-mel encoder and a
    byte-level BPE tokenizer trained on `corpus` (the texts the model will read and write)."""
    tokenizer = train_nano_tokenizer(corpus, vocab_size)
    # One token a frame and one per 320 ms of sound (about 18 media tokens for a 3 s clip): as
    # fast to learn from as 4x4 tokens a frame and 80 ms tokens, at about half the step time.
    policy_config = PolicyConfig(
        backend="composed", lm={**NANO_LM, "vocab_size": len(tokenizer), **(lm or {})},
        towers={"video": {"kind": "frame_cnn", **(vision or {})}, "audio": {"kind": "mel_cnn", **(audio or {})}},
        **{"projector_hidden": 256, "frame_size": 112, "projector_norm": True, **config},
    )
    return ComposedPolicy(policy_config, tokenizer)


def composed(lm, tokenizer, vision=None, audio=None, *, vision_layer: int = -2, vision_pool: int = 7,
             audio_pool: int = 3, audio_clip_frames: bool = False, audio_summary: bool = False,
             audio_layers: int | None = None, audio_frames: bool = True,
             frozen=("video", "audio"), **config
             ) -> ComposedPolicy:
    """Any causal LM + a vision tower + an audio tower + trainable projectors.

    `lm`, `vision`, `audio` are models or names/paths for ``from_pretrained``; `vision` any
    SigLIP/CLIP/ViT vision model, `audio` a Whisper model or encoder (a folder of either); either
    may also be a ready `Tower`.
    Towers are frozen by default, as in R1-Omni. `audio_clip_frames`: pool only the clip's own
    Whisper frames, not the 30 s padding's, and `audio_summary` appends their mean as one more
    token (`WhisperAudioTower`). The tokenizer gains the
    modality markers (and the LM rows for them).
    """
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    if isinstance(tokenizer, str):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    if isinstance(lm, str):
        lm = AutoModelForCausalLM.from_pretrained(lm)
    if add_chat_tokens(tokenizer) or len(tokenizer) > lm.get_input_embeddings().num_embeddings:
        lm.resize_token_embeddings(len(tokenizer))
    towers = {}
    if isinstance(vision, Tower):  # a tower of r1omni's own (e.g. the face CNN)
        towers["video"] = vision
    elif vision is not None:
        vision = AutoModel.from_pretrained(vision) if isinstance(vision, str) else vision
        if hasattr(vision, "text_model"):  # a whole CLIP/SigLIP model: keep the vision half
            vision = _vision_only(vision)
        towers["video"] = HFVisionTower({"layer": vision_layer, "pool": vision_pool}, model=vision)
    if isinstance(audio, Tower):
        towers["audio"] = audio
    elif audio is not None:
        encoder = load_whisper_encoder(audio) if isinstance(audio, (str, Path)) else audio
        encoder = encoder.get_encoder() if hasattr(encoder, "get_encoder") else encoder
        towers["audio"] = WhisperAudioTower({"pool": audio_pool, "clip_frames": audio_clip_frames,
                                             "summary": audio_summary, "layers": audio_layers,
                                             "frames": audio_frames}, model=encoder)
    if not towers:
        raise ConfigError("a composed policy needs a vision tower, an audio tower, or both")
    policy_config = PolicyConfig(
        backend="composed", lm={**lm.config.to_diff_dict(), "model_type": lm.config.model_type},
        towers={modality: tower.config for modality, tower in towers.items()}, frozen=list(frozen), **config,
    )
    return ComposedPolicy(policy_config, tokenizer, lm=lm, towers=towers)


def load_whisper_encoder(source: str | Path):
    """A Whisper encoder from a folder or name holding a whole Whisper model or only its encoder.
    transformers loads an encoder-only folder as a `WhisperModel` with a random encoder and only
    a warning; here every encoder weight must be found, or this raises."""
    from transformers import WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    try:
        whole, info = WhisperModel.from_pretrained(source, output_loading_info=True)
    except (OSError, ValueError) as err:
        raise ConfigError(f"audio tower {source}: cannot load a Whisper model ({err})") from None
    if not any(key.startswith("encoder.") for key in info["missing_keys"]):
        return whole.get_encoder()
    encoder, info = WhisperEncoder.from_pretrained(source, output_loading_info=True)
    if info["missing_keys"]:
        raise ConfigError(f"audio tower {source}: the Whisper encoder's weights are missing "
                          f"(e.g. {sorted(info['missing_keys'])[:3]})")
    return encoder


def _vision_only(model):
    """The vision half of a CLIP or SigLIP model given whole."""
    from transformers import AutoModel

    vision = AutoModel.from_config(model.config.vision_config)
    vision.vision_model.load_state_dict(model.vision_model.state_dict())
    return vision


def _tiny_nano() -> ComposedPolicy:
    """Nano's trainable towers at toy widths."""
    lm = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1)
    return nano(TINY_CORPUS, vocab_size=300, lm=lm, vision={"channels": 8, "width": 16}, audio={"width": 16},
                projector_hidden=32)


def _tiny_hf_towers() -> ComposedPolicy:
    """A Qwen2 LM with frozen SigLIP and Whisper towers (the paper's composition) at toy widths."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    tokenizer = train_nano_tokenizer(TINY_CORPUS, 300)
    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))
    vision = SiglipVisionModel(SiglipVisionConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2,
                                                  num_attention_heads=2, intermediate_size=32))
    audio = WhisperEncoder(WhisperConfig(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
                                         num_mel_bins=80, max_source_positions=1500))
    return composed(lm, tokenizer, vision, audio, vision_pool=2, frame_size=32, num_frames=2, projector_hidden=32)


def _tiny_smol_shape() -> ComposedPolicy:
    """The smol-omni composition at toy widths: a Llama LM, the face CNN (random weights, frozen,
    BatchNorm) and a Whisper encoder pooling only the clip's own frames."""
    from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from r1omni.models.towers import FaceCNN

    tokenizer = train_nano_tokenizer(TINY_CORPUS, 300)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))
    audio = WhisperEncoder(WhisperConfig(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
                                         num_mel_bins=80, max_source_positions=1500))
    return composed(lm, tokenizer, FaceCNN({}), audio, audio_clip_frames=True, audio_summary=True, frame_size=64,
                    num_frames=2, projector_hidden=32, standardize=["video", "audio"])
