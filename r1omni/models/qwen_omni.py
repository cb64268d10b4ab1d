"""Qwen2.5-Omni's thinker as an OmniPolicy backend.

The thinker (``Qwen2_5OmniThinkerForConditionalGeneration``) brings its own vision and audio
encoders and multimodal rotary positions (time, height, width). Its processor's video path needs
torchvision, which does not load beside the CPU torch build here, so frames are cut into
patches as Qwen2-VL's image processor does (groups of `temporal_patch_size` frames, patches
ordered by 2×2 merge windows) and audio goes through Whisper's feature extractor as in the
official processor. Prompts splice the encoders' outputs in place of ``<|VIDEO|>`` /
``<|AUDIO|>`` tokens and carry the thinker's own 3-D position ids, so the shared-prefix passes
of `SharedPrefixLM` apply unchanged.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from r1omni.errors import ConfigError
from r1omni.models.base import ClipMedia, OmniPolicy, PolicyConfig, register_backend
from r1omni.models.shared_prefix import Prompt
from r1omni.models.tokenizer import CHAT_TEMPLATE, TINY_CORPUS, stop_token_ids, train_nano_tokenizer
from r1omni.models.towers import fingerprint
from r1omni.prompts import PLACEHOLDERS

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # Qwen2-VL's image processor defaults
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SECONDS_PER_FRAME = 0.5  # between the sampled frames, for the thinker's temporal rotary positions
# (start marker, content token, end marker): thinker config attributes naming the token ids
TOKEN_ATTRIBUTES = {"video": ("vision_start_token_id", "video_token_index", "vision_end_token_id"),
                    "audio": ("audio_start_token_id", "audio_token_index", "audio_end_token_id")}


def video_grid(frames: np.ndarray, patch: int, merge: int, temporal: int) -> tuple[int, int, int]:
    """The (t, h, w) patch grid of frames ``[N, S, S, 3]``: sides rounded to a multiple of
    patch × merge, frames grouped by `temporal`."""
    unit = patch * merge
    side = max(unit, round(frames.shape[1] / unit) * unit)
    return -(-len(frames) // temporal), side // patch, side // patch


def video_patches(frames: np.ndarray, patch: int, merge: int, temporal: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``[N, S, S, 3]`` uint8 -> flattened patches ``[t*h*w, 3*temporal*patch*patch]`` and
    the grid ``[1, 3]``, in the order Qwen2-VL's processor produces."""
    t, h, w = video_grid(frames, patch, merge, temporal)
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0  # [N, 3, S, S]
    if pixels.shape[-1] != h * patch or pixels.shape[-2] != h * patch:
        pixels = nn.functional.interpolate(pixels, size=(h * patch, w * patch), mode="bicubic", antialias=True)
    pixels = (pixels - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    if len(pixels) < t * temporal:  # repeat the last frame to fill the last temporal group
        pixels = torch.cat([pixels, pixels[-1:].expand(t * temporal - len(pixels), -1, -1, -1)])
    grid = pixels.reshape(t, temporal, 3, h // merge, merge, patch, w // merge, merge, patch)
    grid = grid.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return grid.reshape(t * h * w, 3 * temporal * patch * patch), torch.tensor([[t, h, w]])


@register_backend("qwen2_5_omni")
class QwenOmniPolicy(OmniPolicy):
    """OmniPolicy on Qwen2.5-Omni's thinker (3B/7B checkpoints, or a tiny config in tests)."""

    def __init__(self, config: PolicyConfig, tokenizer, thinker: nn.Module | None = None):
        super().__init__()
        from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

        config.validate()
        config = copy.deepcopy(config)  # filled in below; the caller's stays as given
        if config.backend != "qwen2_5_omni":
            raise ConfigError(f"QwenOmniPolicy needs backend 'qwen2_5_omni', got {config.backend!r}")
        if thinker is None:
            data = {k: v for k, v in config.lm.items() if k != "model_type"}
            thinker = Qwen2_5OmniThinkerForConditionalGeneration(Qwen2_5OmniThinkerConfig(**data))
        self.lm = thinker
        self.tokenizer = tokenizer
        self.config = config
        config.lm = {**thinker.config.to_diff_dict(), "model_type": thinker.config.model_type}
        self.tokens = {m: tuple(getattr(thinker.config, a) for a in attrs) for m, attrs in TOKEN_ATTRIBUTES.items()}
        vocab = set(tokenizer.get_vocab().values())
        missing = [i for ids in self.tokens.values() for i in ids if i not in vocab]
        if missing:
            raise ConfigError(f"the thinker's modality token ids {missing} are not in the tokenizer")
        from transformers import WhisperFeatureExtractor

        self.features = WhisperFeatureExtractor(feature_size=thinker.config.audio_config.num_mel_bins)
        self.stop_ids = stop_token_ids(tokenizer)
        self._identities: dict[str, str] = {}
        self.finish_building()

    # ------------------------------------------------------------------ the interface

    def encoders(self) -> dict[str, nn.Module]:
        return {"video": self.lm.model.visual, "audio": self.lm.model.audio_tower}

    def language_model(self) -> nn.Module:
        return self.lm.model.language_model

    def replace_encoder(self, modality: str, module: nn.Module) -> None:
        setattr(self.lm.model, "visual" if modality == "video" else "audio_tower", module)
        self._identities.pop(modality, None)

    def weights_changed(self) -> None:
        for modality in self.encoders():
            if modality not in self.config.frozen:
                self._identities.pop(modality, None)

    @classmethod
    def tiny_variants(cls):
        return {"thinker": _tiny_thinker}

    # ------------------------------------------------------------------ encoding

    def _video(self, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        vision = self.lm.config.vision_config
        patches, grid = video_patches(frames, vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size)
        dtype = next(self.lm.model.visual.parameters()).dtype
        out = self.lm.model.get_video_features(patches.to(self.device, dtype), grid.to(self.device))
        return torch.cat(list(out.pooler_output)), grid  # [t*h*w / merge², H]

    def _audio(self, audio: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(audio, sampling_rate=16_000, return_attention_mask=True, padding="max_length",
                                 return_tensors="pt")
        mask = features["attention_mask"].to(self.device)
        dtype = next(self.lm.model.audio_tower.parameters()).dtype
        out = self.lm.model.get_audio_features(features["input_features"].to(self.device, dtype),
                                               feature_attention_mask=mask)
        return out.last_hidden_state, mask.sum(-1)  # [Ta, H], mel frames

    def _features(self, modality: str, media: ClipMedia) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings ``[T, H]``, video grid ``[1, 3]`` or mel-frame count ``[1]``); a frozen
        encoder reads and fills the feature cache."""
        frozen = modality in self.config.frozen
        encode = self._video if modality == "video" else self._audio

        def compute() -> torch.Tensor:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                return encode(media.get(modality))[0]

        if frozen and self.feature_cache is not None:
            if modality not in self._identities:
                self._identities[modality] = f"qwen2_5_omni_{modality}-" + fingerprint(self.encoders()[modality], {})
            features = self.feature_cache.get_or_compute(media.key(modality), self._identities[modality],
                                                         self.media_settings(), compute)
            return features.to(self.device, self.lm.dtype), self._layout(modality, media)
        return compute(), self._layout(modality, media)

    def _layout(self, modality: str, media: ClipMedia) -> torch.Tensor:
        """The video's patch grid ``[1, 3]`` or the audio's mel-frame count ``[1]``."""
        if modality == "video":
            vision = self.lm.config.vision_config
            return torch.tensor([video_grid(media.frames, vision.patch_size, vision.spatial_merge_size,
                                            vision.temporal_patch_size)])
        return torch.tensor([min(-(-len(media.audio) // self.features.hop_length), self.features.nb_max_frames)])

    def encode(self, media: ClipMedia) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{modality: (embeddings [T, H], grid or mel-frame count)}`` for what the clip has."""
        return {m: self._features(m, media) for m in ("video", "audio") if media.get(m) is not None}

    def splice(self, text: str, embeddings: dict, messages: list[dict]) -> Prompt:
        """Each placeholder replaced by its start marker, one content token per embedding and its
        end marker, and the thinker's 3-D rotary positions."""
        used = list(embeddings)
        for modality in used:
            start, token, end = self.tokenizer.convert_ids_to_tokens(list(self.tokens[modality]))
            text = text.replace(PLACEHOLDERS[modality], start + token * len(embeddings[modality][0]) + end)
        ids = torch.tensor(self.tokenizer(text, add_special_tokens=False)["input_ids"], device=self.device)
        embeds = self.lm.get_input_embeddings()(ids)
        marked = ids.clone()
        for modality in used:
            where = ids == self.tokens[modality][1]
            embeds = embeds.masked_scatter(where[:, None], embeddings[modality][0].to(embeds.dtype))
            marked[where] = -1
        temporal = self.lm.config.vision_config.temporal_patch_size
        positions, _ = self.lm.model.get_rope_index(
            ids[None], video_grid_thw=embeddings["video"][1].to(self.device) if "video" in used else None,
            attention_mask=torch.ones_like(ids)[None],
            audio_seqlens=embeddings["audio"][1].to(self.device) if "audio" in used else None,
            second_per_grids=torch.tensor([temporal * SECONDS_PER_FRAME]))
        return Prompt(embeds, marked, positions[:, 0])



def from_thinker(thinker: nn.Module, tokenizer, frozen=("video", "audio"), **config) -> QwenOmniPolicy:
    """Wrap a loaded thinker (e.g. ``Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained``)
    and its tokenizer; the encoders are frozen by default."""
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    towers = {"video": {"kind": "qwen2_5_omni_vision"}, "audio": {"kind": "qwen2_5_omni_audio"}}
    policy_config = PolicyConfig(backend="qwen2_5_omni", lm={"model_type": thinker.config.model_type},
                                 towers=towers, frozen=list(frozen), **{"frame_size": 112, **config})
    return QwenOmniPolicy(policy_config, tokenizer, thinker)


QWEN_TOKENS = ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|VIDEO|>", "<|IMAGE|>", "<|vision_bos|>",
               "<|vision_eos|>"]


def _tiny_thinker() -> QwenOmniPolicy:
    """Qwen2.5-Omni's thinker at toy widths, with a tokenizer holding its modality tokens."""
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    tokenizer = train_nano_tokenizer(TINY_CORPUS, 300, QWEN_TOKENS)
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
    return from_thinker(Qwen2_5OmniThinkerForConditionalGeneration(config), tokenizer, num_frames=4)
