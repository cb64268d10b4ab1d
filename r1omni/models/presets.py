"""Ready-made policies: the CPU-sized `nano` preset, and composed models such as `r1omni-0.5b`."""

from __future__ import annotations

from collections.abc import Iterable

from r1omni.models.policy import OmniPolicy, PolicyConfig
from r1omni.models.tokenizer import add_chat_tokens, train_nano_tokenizer
from r1omni.models.towers import ConfigError, HFVisionTower, WhisperAudioTower

NANO_LM = dict(model_type="qwen2", hidden_size=256, intermediate_size=688, num_hidden_layers=4,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
               tie_word_embeddings=True, rope_theta=10000.0)

# The paper's shapes (HumanOmni-0.5B): Qwen2.5-0.5B-Instruct, SigLIP base patch16 224 with
# features from layer -2 pooled 14x14 -> 7x7 (49 tokens a frame), Whisper-large-v3's encoder
# pooled by 3 (500 tokens), 8 frames. Build with `composed(R1OMNI_05B)` where the weights exist
# locally or a hub is reachable.
R1OMNI_05B = {
    "lm": "Qwen/Qwen2.5-0.5B-Instruct",
    "vision": "google/siglip-base-patch16-224",
    "audio": "openai/whisper-large-v3",
    "vision_layer": -2, "vision_pool": 7, "audio_pool": 3, "num_frames": 8, "frame_size": 224,
}


def r1omni_05b(lm: str = R1OMNI_05B["lm"], vision: str = R1OMNI_05B["vision"],
               audio: str = R1OMNI_05B["audio"]) -> OmniPolicy:
    """The paper's HumanOmni-0.5B shape from local paths or hub names (weights must be
    reachable: nothing is downloaded in r1omni's own tests or demo)."""
    shape = {k: v for k, v in R1OMNI_05B.items() if k not in ("lm", "vision", "audio")}
    return composed(lm, lm, vision, audio, **shape)


def default_corpus() -> list[str]:
    """Text for the nano tokenizer: the synthetic world's prompts, captions and rationales."""
    from r1omni.data.synth import SynthWorld, WorldConfig
    from r1omni.labels import ALL_LABELS
    from r1omni.prompts import PRESETS

    world = SynthWorld(WorldConfig(seed=12345, sizes={"pretrain": 1500, "coldstart": 1500}))
    texts = [p.question for p in PRESETS.values()] + list(ALL_LABELS)
    for split in ("pretrain", "coldstart"):
        for row in world.rows(split):
            texts += [row.caption, f"<think>{row.rationale}</think>\n<answer>{row.label}</answer>"]
    return texts


def nano(corpus: Iterable[str] | None = None, vocab_size: int = 4096, lm: dict | None = None,
         vision: dict | None = None, audio: dict | None = None, **config) -> OmniPolicy:
    """A from-scratch policy small enough to train on two CPU cores: a Qwen2-style LM
    (hidden 256, 4 layers), a small CNN frame encoder, a convolutional log-mel encoder and a
    byte-level BPE tokenizer trained on `corpus` (default: the synthetic world's texts)."""
    tokenizer = train_nano_tokenizer(corpus if corpus is not None else default_corpus(), vocab_size)
    # One token a frame and one per 320 ms of sound (about 18 media tokens for a 3 s clip): as
    # fast to learn from as 4x4 tokens a frame and 80 ms tokens, at about half the step time.
    policy_config = PolicyConfig(
        backend="nano", lm={**NANO_LM, "vocab_size": len(tokenizer), **(lm or {})},
        towers={"video": {"kind": "nano_cnn", "grid": 1, **(vision or {})},
                "audio": {"kind": "nano_mel", "pool": 4, **(audio or {})}},
        **{"projector_hidden": 256, "frame_size": 112, "projector_norm": True, **config},
    )
    return OmniPolicy(policy_config, tokenizer)


def composed(lm, tokenizer, vision=None, audio=None, *, vision_layer: int = -2, vision_pool: int = 7,
             audio_pool: int = 3, frozen=("video", "audio"), **config) -> OmniPolicy:
    """Any causal LM + a vision tower + an audio tower + trainable projectors.

    `lm`, `vision`, `audio` are models or names/paths for ``from_pretrained``; `vision` any
    SigLIP/CLIP/ViT vision model, `audio` a Whisper model or encoder. Towers are frozen by
    default, as in R1-Omni. The tokenizer gains the modality markers (and the LM rows for them).
    """
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    if isinstance(tokenizer, str):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    if isinstance(lm, str):
        lm = AutoModelForCausalLM.from_pretrained(lm)
    if add_chat_tokens(tokenizer) or len(tokenizer) > lm.get_input_embeddings().num_embeddings:
        lm.resize_token_embeddings(len(tokenizer))
    towers = {}
    if vision is not None:
        vision = AutoModel.from_pretrained(vision) if isinstance(vision, str) else vision
        if hasattr(vision, "text_model"):  # a whole CLIP/SigLIP model: keep the vision half
            vision = _vision_only(vision)
        towers["video"] = HFVisionTower({"layer": vision_layer, "pool": vision_pool}, model=vision)
    if audio is not None:
        audio = AutoModel.from_pretrained(audio) if isinstance(audio, str) else audio
        encoder = audio.get_encoder() if hasattr(audio, "get_encoder") else audio
        towers["audio"] = WhisperAudioTower({"pool": audio_pool}, model=encoder)
    if not towers:
        raise ConfigError("a composed policy needs a vision tower, an audio tower, or both")
    tower_configs = {modality: tower.config for modality, tower in towers.items()}
    policy_config = PolicyConfig(
        backend="composed", lm={**lm.config.to_diff_dict(), "model_type": lm.config.model_type},
        towers=tower_configs, frozen=list(frozen), **config,
    )
    return OmniPolicy(policy_config, tokenizer, lm=lm, towers=towers)


def _vision_only(model):
    """The vision half of a CLIP or SigLIP model given whole."""
    from transformers import AutoModel

    vision = AutoModel.from_config(model.config.vision_config)
    vision.vision_model.load_state_dict(model.vision_model.state_dict())
    return vision
