"""Released HumanOmni / R1-Omni folders: read one into the humanomni backend, write one back.

A released folder (e.g. ``StarJiaxing/R1-Omni-0.5B``) holds ``config.json`` (``model_type:
HumanOmni_qwen2``), one ``model.safetensors`` and the Qwen2 tokenizer files. The file holds the LM
(its tied ``lm_head`` left out), the projectors, the gate's BERT and its MLP, and copies of the
frozen SigLIP and Whisper towers. The official loader rebuilds the towers from the folders that
``mm_vision_tower`` / ``mm_audio_tower`` name and ignores those copies; here the towers come from
those folders when they hold weights, else from the copies (bf16 roundings of the same frozen
weights). The gate's BERT weights are in the file; its tokenizer (bert-base-uncased's
``vocab.txt``) is not, and is found by `find_bert_tokenizer`. Key layout, shapes and numerics:
``shared/humanomni/LAYOUT.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from r1omni.errors import ConfigError
from r1omni.models.base import LoadingOption, PolicyConfig, ReleasedLayout, register_released_layout
from r1omni.models.humanomni.policy import BERT_TOKENIZER_DIR, HumanOmniPolicy

MODEL_TYPE = "HumanOmni_qwen2"
# Official key prefix -> r1omni's, the more specific first.
KEY_PREFIXES = (
    ("model.vision_tower.vision_tower.vision_model.", "towers.video.model."),
    ("model.audio_tower.audio_tower.encoder.", "towers.audio.model."),
    ("model.mm_projector.", "projector."),
    ("model.audio_projector.", "audio_projector."),
    ("model.bert_model.", "bert."),
    ("model.bert_gate.", "gate."),
    ("model.", "lm.model."),
    ("lm_head.", "lm.lm_head."),
)
# In released files but read by no code: the HumanOmni repository's unused compressor weights and
# the random classification head of the Whisper tower's WhisperForAudioClassification.
IGNORED_PREFIXES = ("model.feature_compressor.", "model.audio_tower.audio_tower.projector.",
                    "model.audio_tower.audio_tower.classifier.")
LM_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
           "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
           "tie_word_embeddings", "attention_dropout", "sliding_window", "use_sliding_window", "max_window_layers",
           "bos_token_id", "eos_token_id", "initializer_range")
# The towers and gate encoder the released 0.5B models were trained with: used when a folder's
# tower paths do not exist here (their weights then come from the copies in model.safetensors).
KNOWN_TOWERS = {
    "vision": dict(model_type="siglip_vision_model", hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                   num_attention_heads=12, image_size=224, patch_size=16, hidden_act="gelu_pytorch_tanh",
                   layer_norm_eps=1e-6),
    "audio": dict(model_type="whisper", d_model=1280, encoder_layers=32, encoder_attention_heads=20,
                  encoder_ffn_dim=5120, num_mel_bins=128, max_source_positions=1500, activation_function="gelu",
                  decoder_layers=32, decoder_attention_heads=20, decoder_ffn_dim=5120, vocab_size=51866),
}
BERT_BASE_UNCASED = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
                         layer_norm_eps=1e-12)
BERT_TOKENIZER_ENV = "R1OMNI_BERT_TOKENIZER"


def is_official(directory: str | Path) -> bool:
    """Whether `directory` is a released HumanOmni/R1-Omni folder (not an r1omni save)."""
    config = Path(directory) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == MODEL_TYPE
    except (ValueError, UnicodeDecodeError):
        return False


def find_bert_tokenizer(directory: Path, given: str | Path | None = None) -> Path:
    """The gate's BERT tokenizer folder: `given`, else ``$R1OMNI_BERT_TOKENIZER``, else
    ``bert_tokenizer/`` or ``bert-base-uncased/`` inside the model folder; a clear error when
    none holds a ``vocab.txt`` (or the ``tokenizer.json`` transformers saves). (The official code
    hard-codes its authors' own path, which is not looked at here.)"""
    def holds_tokenizer(folder) -> bool:
        return bool(folder) and any((Path(folder) / name).is_file() for name in ("vocab.txt", "tokenizer.json"))

    candidates = [given, os.environ.get(BERT_TOKENIZER_ENV), directory / BERT_TOKENIZER_DIR,
                  directory / "bert-base-uncased"]
    if given is not None and not holds_tokenizer(given):
        raise ConfigError(f"{given}: no vocab.txt (the gate's BERT tokenizer, bert-base-uncased's)")
    for candidate in candidates:
        if holds_tokenizer(candidate):
            return Path(candidate)
    raise ConfigError(
        f"{directory}: the BERT gate needs bert-base-uncased's tokenizer (its vocab.txt), which the released "
        f"folder does not hold: pass --bert-tokenizer DIR (Python: bert_tokenizer=DIR), set {BERT_TOKENIZER_ENV}, "
        f"or put it in {directory / BERT_TOKENIZER_DIR}/")


def _tower_path(directory: Path, named: str | None) -> Path | None:
    """The folder a config's ``mm_*_tower`` names, looked for inside the model folder only: a
    relative name that stays inside it, else the name's last part (released configs name the
    authors' own absolute paths). A folder never makes r1omni read files outside it."""
    if not named:
        return None
    inside = directory.resolve()
    for candidate in (directory / named, directory / Path(named).name):
        resolved = candidate.resolve()
        if resolved.is_relative_to(inside) and resolved.is_dir():
            return resolved
    return None


def _has_weights(path: Path | None) -> bool:
    return path is not None and (any(path.glob("*.safetensors")) or any(path.glob("*.bin")))


def _tower_config(path: Path | None, kind: str, official: dict) -> dict:
    """The tower's Hugging Face config dict: its folder's config.json, else the copy an r1omni
    export keeps in config.json, else the released model's tower."""
    if path is None or not (path / "config.json").is_file():
        return dict(official.get(f"r1omni_{kind}_config") or KNOWN_TOWERS[kind])
    data = json.loads((path / "config.json").read_text())
    if kind == "vision" and "vision_config" in data:  # a whole SigLIP model's config
        data = {**data["vision_config"], "model_type": "siglip_vision_model"}
    return {k: v for k, v in data.items() if not k.startswith(("_", "architectures", "transformers_version"))}


def _bert_config(official: dict, tokenizer_dir: Path) -> dict:
    """The gate's BertConfig dict: the copy an r1omni export keeps in config.json, else the
    tokenizer folder's config.json (a bert-base-uncased download has one), else bert-base-uncased's."""
    if official.get("r1omni_bert_config"):
        return dict(official["r1omni_bert_config"])
    path = tokenizer_dir / "config.json"
    if path.is_file():
        data = json.loads(path.read_text())
        return {k: v for k, v in data.items() if k in BERT_BASE_UNCASED or k == "pad_token_id"}
    return dict(BERT_BASE_UNCASED)


def policy_config(official: dict, directory: Path, bert: dict, slow_fast: bool = False) -> PolicyConfig:
    """r1omni's config of the model an official config.json describes."""
    vision_path = _tower_path(directory, official.get("mm_vision_tower"))
    audio_path = _tower_path(directory, official.get("mm_audio_tower"))
    vision = _tower_config(vision_path, "vision", official)
    grid = vision["image_size"] // vision["patch_size"]
    lm = {k: official[k] for k in LM_KEYS if k in official}
    return PolicyConfig(
        backend="humanomni", lm={**lm, "model_type": "qwen2"},
        towers={"video": {"kind": "hf_vision", "layer": official.get("mm_vision_select_layer", -2), "pool": grid,
                          "hf_config": vision},
                "audio": {"kind": "whisper", "pool": 3, "hf_config": _tower_config(audio_path, "audio", official)}},
        frozen=["video", "audio"], num_frames=official.get("num_frames", 8), frame_size=vision["image_size"],
        backend_options={"bert": bert, "slow_fast": slow_fast,
                         "tower_paths": {"vision": official.get("mm_vision_tower", "siglip-base-patch16-224"),
                                         "audio": official.get("mm_audio_tower", "whisper-large-v3")}},
    )


def to_r1omni_key(key: str) -> str | None:
    """r1omni's name for an official key; None for the keys no code reads."""
    if key.startswith(IGNORED_PREFIXES):
        return None
    for official, ours in KEY_PREFIXES:
        if key.startswith(official):
            return ours + key[len(official):]
    raise ConfigError(f"unknown key {key!r} in a HumanOmni checkpoint")


def load_official_weights(policy: HumanOmniPolicy, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load an official state dict (any dtype) into `policy`; raises naming any key that is
    missing (beyond the tied lm_head) or that no code reads and LAYOUT.md does not list."""
    state = {}
    for key, tensor in tensors.items():
        ours = to_r1omni_key(key)
        if ours is not None:
            state[ours] = tensor
    try:
        result = policy.load_state_dict(state, strict=False, assign=False)
    except RuntimeError as err:
        raise ConfigError(f"{source}: weights do not fit its config.json ({err})") from None
    tied = policy.lm.config.tie_word_embeddings
    missing = [k for k in result.missing_keys if not (tied and k == "lm.lm_head.weight")]
    if missing or result.unexpected_keys:
        raise ConfigError(f"{source}: missing keys {missing[:5]} ({len(missing)}), unexpected "
                          f"{result.unexpected_keys[:5]} ({len(result.unexpected_keys)})")


def read_official(directory: str | Path, bert_tokenizer: str | Path | None = None,
                  slow_fast: bool = False) -> HumanOmniPolicy:
    """A released folder as a humanomni policy (float32, CPU). `slow_fast`: the HumanOmni
    repository's 170-token compressor (R1-Omni's code, the default, has it off)."""
    from safetensors.torch import load_file
    from transformers import BertTokenizer, Qwen2Tokenizer

    directory = Path(directory)
    official = json.loads((directory / "config.json").read_text())
    weights = directory / "model.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{directory}: no model.safetensors (the released folders hold one file of weights)")
    bert_dir = find_bert_tokenizer(directory, bert_tokenizer)
    config = policy_config(official, directory, _bert_config(official, bert_dir), slow_fast)
    tokenizer = Qwen2Tokenizer.from_pretrained(directory)
    template_file = directory / "chat_template.json"  # the processor's copy, saved beside the tokenizer
    if tokenizer.chat_template is None and template_file.is_file():
        tokenizer.chat_template = json.loads(template_file.read_text()).get("chat_template")
    if tokenizer.chat_template is None:
        raise ConfigError(f"{directory}: the tokenizer has no chat template (tokenizer_config.json or "
                          "chat_template.json)")
    policy = HumanOmniPolicy(config, tokenizer, BertTokenizer.from_pretrained(bert_dir))
    try:
        tensors = load_file(weights)
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ConfigError(f"{weights}: not a readable safetensors file ({err})") from None
    load_official_weights(policy, tensors, str(weights))
    _load_tower_folders(policy, directory, official)
    return policy.float().train(False)


def _load_tower_folders(policy: HumanOmniPolicy, directory: Path, official: dict) -> None:
    """Tower weights from the folders ``mm_vision_tower`` / ``mm_audio_tower`` name, where they
    hold weights (as the official loader takes them), over the checkpoint's copies."""
    from transformers import AutoModel

    from r1omni.models.composed import _vision_only, load_whisper_encoder

    vision_path = _tower_path(directory, official.get("mm_vision_tower"))
    if _has_weights(vision_path):
        vision = AutoModel.from_pretrained(vision_path)
        vision = _vision_only(vision) if hasattr(vision, "text_model") else vision
        policy.towers["video"].model.load_state_dict(vision.state_dict())
    audio_path = _tower_path(directory, official.get("mm_audio_tower"))
    if _has_weights(audio_path):
        policy.towers["audio"].model.load_state_dict(load_whisper_encoder(audio_path).state_dict())
    for tower in policy.towers.values():
        tower.forget_fingerprint()


# ----------------------------------------------------------------------------- writing


def official_state_dict(policy: HumanOmniPolicy) -> dict[str, torch.Tensor]:
    """The policy's weights under the official key names (the tied lm_head left out, as released)."""
    reverse = [(ours, official) for official, ours in KEY_PREFIXES]
    tied = policy.lm.config.tie_word_embeddings
    state = {}
    for key, tensor in policy.state_dict().items():
        if tied and key == "lm.lm_head.weight":
            continue
        prefix = next(((ours, official) for ours, official in reverse if key.startswith(ours)), None)
        if prefix is None:
            raise ConfigError(f"{key}: no place in the official layout")
        state[prefix[1] + key[len(prefix[0]):]] = tensor
    return state


def official_config(policy: HumanOmniPolicy) -> dict:
    """config.json for the official code (`HumanOmniQwen2ForCausalLM`)."""
    lm = policy.lm.config
    rope = getattr(lm, "rope_parameters", None) or {}
    values = {k: getattr(lm, k) for k in LM_KEYS if hasattr(lm, k)}
    values["rope_theta"] = rope.get("rope_theta", getattr(lm, "rope_theta", 10000.0))
    paths = policy.config.backend_options.get("tower_paths", {})
    vision, audio = policy.towers["video"], policy.towers["audio"]
    return {
        "architectures": ["HumanOmniQwen2ForCausalLM"], "model_type": MODEL_TYPE, **values,
        "rope_scaling": None, "mm_projector_type": "all_in_one_small", "mm_audio_projector_type": "mlp2x_gelu",
        "mm_hidden_size": vision.out_dim, "audio_hidden_size": audio.out_dim,
        "mm_vision_select_layer": vision.config["layer"], "mm_vision_select_feature": "patch",
        "mm_use_x_start_end": True, "num_frames": policy.config.num_frames,
        "mm_vision_tower": paths.get("vision", "siglip-base-patch16-224"),
        "mm_audio_tower": paths.get("audio", "whisper-large-v3"),
        "torch_dtype": str(policy.lm.dtype).removeprefix("torch."), "use_cache": True,
        # Read by r1omni when the tower folders above are not there; the official code ignores them.
        "r1omni_vision_config": vision.config["hf_config"], "r1omni_audio_config": audio.config["hf_config"],
        "r1omni_bert_config": policy.config.backend_options["bert"],
    }


def export_official(policy: HumanOmniPolicy, directory: str | Path) -> Path:
    """Write `policy` as a released folder: config.json, model.safetensors (official keys), the
    tokenizer, and the gate's BERT tokenizer in ``bert_tokenizer/`` (so the folder reloads alone)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(official_config(policy), indent=2) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in official_state_dict(policy).items()}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    policy.tokenizer.save_pretrained(directory)
    policy.bert_tokenizer.save_pretrained(directory / BERT_TOKENIZER_DIR)
    return directory


register_released_layout(ReleasedLayout(
    backend="humanomni", recognises=is_official, read=read_official, export=export_official,
    options=(LoadingOption("bert_tokenizer", "released HumanOmni/R1-Omni folders: bert-base-uncased's tokenizer "
                           f"folder (vocab.txt) for the gate (default: ${BERT_TOKENIZER_ENV}, else "
                           f"MODEL/{BERT_TOKENIZER_DIR})"),
             LoadingOption("slow_fast", "released HumanOmni folders: the HumanOmni repository's slow-fast "
                           "compressor (170 video tokens; R1-Omni's code, the default, uses all 392)", switch=True))))
