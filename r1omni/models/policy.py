"""OmniPolicy: video and audio in, text out, on any Hugging Face causal LM.

A clip is encoded by modality towers and projected to the LM's width; a chat prompt's
``<video>`` / ``<audio>`` placeholders expand into those embeddings between start/end markers.
The G completions of one prompt share its prefix: `generate` prefills each prompt once and
samples G continuations from copies of its KV cache, and `completion_logprobs` runs the prefix
once with the G completions attending to it, with gradients equal to the repeated computation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from r1omni.models.cache import FeatureCache, array_hash
from r1omni.models.persistence import CONFIG_NAME, SavedPolicy
from r1omni.models.shared_prefix import Prompt, SharedPrefixLM
from r1omni.models.tokenizer import MODALITY_MARKERS, stop_token_ids
from r1omni.models.towers import ConfigError, Tower, build_tower
from r1omni.prompts import AUDIO_PLACEHOLDER, VIDEO_PLACEHOLDER

PLACEHOLDERS = {"video": VIDEO_PLACEHOLDER, "audio": AUDIO_PLACEHOLDER}
BACKENDS = ("nano", "composed", "qwen2_5_omni")


@dataclass
class PolicyConfig:
    backend: str  # "nano" or "composed"
    lm: dict  # a Hugging Face config dict (with model_type) for the causal LM
    towers: dict[str, dict]  # modality -> tower config
    projector_hidden: int = 512
    frozen: list[str] = field(default_factory=list)  # parts not trained: "video", "audio", "lm"
    num_frames: int = 8
    frame_size: int = 112
    max_audio_seconds: float = 30.0
    attn_implementation: str = "sdpa"
    lora: dict | None = None  # peft LoraConfig arguments: the LM trains low-rank adapters only
    # End each projector with a LayerNorm scaled to the LM's token embeddings. A from-scratch LM
    # (nano) has tiny embeddings (std 0.02); media tokens ten times larger stop it from learning
    # to read them (measured: a nano LM memorises 32 clips from std-0.02 tokens, not from 0.2).
    projector_norm: bool = False

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}")
        unknown = sorted(set(self.towers) - set(PLACEHOLDERS))
        if unknown or not self.towers:
            raise ConfigError(f"towers must be given for video and/or audio, got {sorted(self.towers)}")
        bad = sorted(set(self.frozen) - {"video", "audio", "lm"})
        if bad:
            raise ConfigError(f"frozen parts must be among video, audio, lm; got {bad}")
        if "model_type" not in self.lm:
            raise ConfigError("lm config needs a model_type (e.g. qwen2)")


@dataclass
class ClipMedia:
    """A clip's decoded media; the keys identify the content for the feature cache."""

    frames: np.ndarray | None = None  # [N, S, S, 3] uint8
    audio: np.ndarray | None = None  # [T] float32, 16 kHz
    video_key: str | None = None
    audio_key: str | None = None

    def get(self, modality: str):
        return self.frames if modality == "video" else self.audio

    def key(self, modality: str) -> str:
        given = self.video_key if modality == "video" else self.audio_key
        return given or array_hash(self.get(modality))


def _build_lm(config: PolicyConfig) -> nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    data = dict(config.lm)
    try:
        lm_config = AutoConfig.for_model(data.pop("model_type"), **data)
        return AutoModelForCausalLM.from_config(lm_config, attn_implementation=config.attn_implementation)
    except ValueError as err:
        raise ConfigError(f"cannot build the LM: {err}") from None


class OmniPolicy(SharedPrefixLM, SavedPolicy, nn.Module):
    def __init__(self, config: PolicyConfig, tokenizer, lm: nn.Module | None = None,
                 towers: dict[str, Tower] | None = None):
        super().__init__()
        config.validate()
        self.config = config
        self.tokenizer = tokenizer
        self.lm = lm if lm is not None else _build_lm(config)
        towers = towers or {m: build_tower(c, m) for m, c in config.towers.items()}
        self.towers = nn.ModuleDict(towers)
        # The config records the parts as built (defaults filled in), so a saved policy rebuilds them.
        config.lm = {**self.lm.config.to_diff_dict(), "model_type": self.lm.config.model_type}
        config.towers = {m: t.config for m, t in self.towers.items()}
        if config.lora:
            self._wrap_lora(config.lora)
        width = self.lm.get_input_embeddings().embedding_dim
        self.projectors = nn.ModuleDict({m: self._projector(t.out_dim, width) for m, t in self.towers.items()})
        vocab = tokenizer.get_vocab()
        missing = [t for pair in MODALITY_MARKERS.values() for t in pair if t not in vocab]
        if missing:
            raise ConfigError(f"tokenizer lacks the modality markers {missing}; see add_chat_tokens")
        if len(tokenizer) > self.lm.get_input_embeddings().num_embeddings:
            raise ConfigError(f"tokenizer has {len(tokenizer)} tokens but the LM embeds only "
                              f"{self.lm.get_input_embeddings().num_embeddings}")
        self.markers = {m: (vocab[a], vocab[b]) for m, (a, b) in MODALITY_MARKERS.items()}
        self.stop_ids = stop_token_ids(tokenizer)
        self.feature_cache: FeatureCache | None = None
        for part in config.frozen:
            module = self.lm if part == "lm" else self.towers[part] if part in self.towers else None
            if module is not None:
                module.requires_grad_(False)

    def _projector(self, tower_width: int, width: int) -> nn.Sequential:
        layers = [nn.Linear(tower_width, self.config.projector_hidden), nn.GELU(),
                  nn.Linear(self.config.projector_hidden, width)]
        if self.config.projector_norm:
            norm = nn.LayerNorm(width)
            with torch.no_grad():
                norm.weight.fill_(float(self.lm.get_input_embeddings().weight.std()))
            layers.append(norm)
        return nn.Sequential(*layers)

    def _wrap_lora(self, settings: dict) -> None:
        from peft import LoraConfig, get_peft_model

        try:
            lora = LoraConfig(**{"target_modules": "all-linear", **settings})
        except TypeError as err:
            raise ConfigError(f"lora settings: {err}") from None
        self.lm = get_peft_model(self.lm, lora)

    def add_lora(self, r: int = 16, alpha: int = 32, dropout: float = 0.0, **settings) -> None:
        """Train low-rank adapters instead of the LM's weights (peft); saved and reloaded with
        the policy."""
        if self.config.lora:
            raise ConfigError("this policy already has LoRA adapters")
        self.config.lora = {"r": r, "lora_alpha": alpha, "lora_dropout": dropout, **settings}
        self._wrap_lora(self.config.lora)

    # ------------------------------------------------------------------ encoding

    def tower_features(self, modality: str, media: ClipMedia) -> torch.Tensor:
        """Tower output ``[T, D]``; a frozen tower reads and fills the feature cache."""
        tower = self.towers[modality]
        frozen = modality in self.config.frozen

        def compute() -> torch.Tensor:
            dtype = next(tower.parameters()).dtype
            inputs = tower.preprocess(media.get(modality)).to(self.device, dtype=dtype)
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                return tower(inputs)

        if frozen and self.feature_cache is not None:
            settings = f"{self.config.num_frames}x{self.config.frame_size}|{self.config.max_audio_seconds}"
            features = self.feature_cache.get_or_compute(media.key(modality), tower.identity(), settings, compute)
            return features.to(self.device)
        return compute()

    def encode(self, media: ClipMedia) -> dict[str, torch.Tensor]:
        """Modality embeddings ``{modality: [T, H]}`` in the LM's width, for what the clip has."""
        return {m: self.projectors[m](self.tower_features(m, media).to(self.lm.dtype)) for m in self.towers
                if media.get(m) is not None}

    def build_inputs(self, messages: list[dict], embeddings: dict[str, torch.Tensor],
                     add_generation_prompt: bool = True) -> Prompt:
        """Render the chat template and splice each placeholder's embeddings in, wrapped in its
        modality's start and end markers."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
        embed = self.lm.get_input_embeddings()
        pieces: list[tuple[str, object]] = [("text", text)]
        for modality, placeholder in PLACEHOLDERS.items():
            split = []
            for kind, value in pieces:
                if kind != "text" or placeholder not in value:
                    split.append((kind, value))
                    continue
                parts = value.split(placeholder)
                for i, part in enumerate(parts):
                    if i:
                        split.append(("media", modality))
                    split.append(("text", part))
            pieces = split
        used = {value for kind, value in pieces if kind == "media"}
        absent = sorted(used - set(embeddings))
        if absent:
            raise ValueError(f"the prompt has {', '.join(PLACEHOLDERS[m] for m in absent)} but the clip has no "
                             f"{' or '.join(absent)}")
        ids, embeds = [], []
        for kind, value in pieces:
            if kind == "text":
                if not value:
                    continue
                tokens = torch.tensor(self.tokenizer(value, add_special_tokens=False)["input_ids"], dtype=torch.long)
                ids.append(tokens)
                embeds.append(embed(tokens.to(self.device)))
            else:
                start, end = self.markers[value]
                media = embeddings[value].to(embed.weight.dtype)
                ids += [torch.tensor([start]), torch.full((len(media),), -1), torch.tensor([end])]
                embeds += [embed(torch.tensor([start], device=self.device)), media,
                           embed(torch.tensor([end], device=self.device))]
        ids = torch.cat(ids)
        return Prompt(torch.cat(embeds), ids, torch.arange(len(ids), device=self.device))

    def weights_changed(self) -> None:
        for tower in self.towers.values():
            tower.forget_fingerprint()

    # ------------------------------------------------------------------ persistence

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "auto",
                        dtype: str | torch.dtype = "auto") -> OmniPolicy:
        """Load a saved policy. ``device="auto"`` takes CUDA when present, else the CPU;
        ``dtype="auto"`` takes bfloat16 on a GPU that supports it, else float32."""
        directory = Path(directory)
        config_path = directory / CONFIG_NAME
        if not config_path.is_file():
            raise ConfigError(f"{directory}: not a saved r1omni model (no {CONFIG_NAME})")
        data = json.loads(config_path.read_text())
        try:
            config = PolicyConfig(**data)
        except TypeError as err:
            raise ConfigError(f"{config_path}: {err}") from None
        if config.backend == "qwen2_5_omni":
            from r1omni.models.qwen_omni import QwenOmniPolicy

            return QwenOmniPolicy.restore(directory, config, device, dtype)
        return cls.restore(directory, config, device, dtype)
