"""The policy interface: everything training, prediction, the feature cache and sharding use of a model.

An `OmniPolicy` reads a clip (`read_clip`), encodes it (`encode`), builds a chat prompt with the
clip's embeddings spliced in (`build_inputs`, `prompt`), samples G completions per prompt from one
prefill (`generate`) and scores completions (`completion_logprobs`); those two come from
`SharedPrefixLM`. For training it names its parameter groups, its modality encoders (frozen ones
feed the feature cache and are shared with GRPO's reference), its shard units, and takes LoRA
adapters. It saves to and loads from a folder.

A backend is one subclass registered with `@register_backend(name)`; `OmniPolicy.from_pretrained`
builds whichever backend a saved folder names, and the test matrix runs every registered backend
through every path by its `tiny_variants`.
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from r1omni.errors import ConfigError, MissingStreamError, R1OmniError
from r1omni.media import FaceReport, check_file, read_audio, read_face_frames, read_frames
from r1omni.models.cache import FeatureCache, array_hash, content_hash
from r1omni.models.shared_prefix import Prompt, SharedPrefixLM
from r1omni.models.standardize import statistics_group
from r1omni.models.tokenizer import IM_END
from r1omni.prompts import PLACEHOLDERS

CONFIG_NAME, WEIGHTS_NAME = "r1omni_config.json", "model.safetensors"
MODALITIES = ("video", "audio")
PARTS = ("video", "audio", "lm")  # what `frozen` may name


@dataclass
class PolicyConfig:
    backend: str  # a registered backend ("composed", "qwen2_5_omni"); "nano" is read as composed
    lm: dict  # a Hugging Face config dict (with model_type) for the causal LM
    towers: dict[str, dict]  # modality -> encoder config
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
    # Frozen towers whose features are standardised by corpus statistics before their projector
    # (r1omni.models.standardize); fitted on the training clips when training starts.
    standardize: list[str] = field(default_factory=list)
    # What the model was trained to do, recorded by the trainer so that predict and eval default
    # to it: {"prompt": preset, "labels": vocabulary name, "modalities": [...]}.
    task: dict | None = None
    # Settings only one backend reads (e.g. humanomni's gate and projector), saved with the rest.
    backend_options: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}")
        unknown = sorted(set(self.towers) - set(MODALITIES))
        if unknown or not self.towers:
            raise ConfigError(f"towers must be given for video and/or audio, got {sorted(self.towers)}")
        bad = sorted(set(self.frozen) - set(PARTS))
        if bad:
            raise ConfigError(f"frozen parts must be among video, audio, lm; got {bad}")
        loose = sorted(set(self.standardize) - (set(self.frozen) & set(self.towers)))
        if loose:
            raise ConfigError(f"standardize names {loose}, which are not frozen towers (statistics of features "
                              "that train would go stale)")
        if "model_type" not in self.lm:
            raise ConfigError("lm config needs a model_type (e.g. qwen2)")


@dataclass
class ClipMedia:
    """A clip's decoded media; the keys identify the content for the feature cache."""

    frames: np.ndarray | None = None  # [N, S, S, 3] uint8
    audio: np.ndarray | None = None  # [T] float32, 16 kHz
    video_key: str | None = None
    audio_key: str | None = None
    # Modalities left undecoded because their encoder features are in the feature cache.
    cached: tuple[str, ...] = ()
    # What the face search found in the frames, for a video encoder that reads faces.
    faces: FaceReport | None = None
    # The statistics group (a corpus, a speaker) whose feature statistics standardise this clip
    # (r1omni.models.standardize); None: the model's own.
    statistics: str | None = None

    def get(self, modality: str):
        return self.frames if modality == "video" else self.audio

    def key(self, modality: str) -> str:
        given = self.video_key if modality == "video" else self.audio_key
        return given or array_hash(self.get(modality))

    def present(self) -> list[str]:
        return [m for m in MODALITIES if self.get(m) is not None or m in self.cached]


@dataclass
class ShardUnits:
    """How FSDP splits a policy: `inner` units inside the LM (decoder layers, embeddings) and
    `outer` ones outside it (projectors, trainable towers) are gathered only while they run; the
    LM itself is the root; `keep_whole` are frozen parameters inside the LM (an encoder the
    backend keeps there) that every process holds whole."""

    inner: list[nn.Module | list[nn.Module]]
    root: nn.Module
    outer: list[nn.Module]
    keep_whole: set[nn.Parameter]


BACKENDS: dict[str, type[OmniPolicy]] = {}
ALIASES = {"nano": "composed"}  # saved configs of earlier releases name the nano preset as a backend


def register_backend(name: str) -> Callable[[type], type]:
    """Class decorator: `OmniPolicy.from_pretrained` builds folders whose config names `name`."""

    def register(cls: type) -> type:
        cls.backend = name
        BACKENDS[name] = cls
        return cls

    return register


@dataclass(frozen=True)
class LoadingOption:
    """An option a backend takes when it reads a folder in its released layout. Every command
    that loads a model offers it as ``--NAME`` (dashes for underscores); Python callers pass it to
    `load_policy` by name."""

    name: str
    help: str
    switch: bool = False  # on or off (a flag without a value); else a path

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class ReleasedLayout:
    """The folder layout a backend's models are released in (not r1omni's own saves), declared by
    the backend's module with `register_released_layout`: how to recognise and read such a folder,
    the options reading it takes, and how to write a model back in it."""

    backend: str
    recognises: Callable[[Path], bool]
    read: Callable[..., OmniPolicy]  # read(directory, **options): a float32 policy on the CPU
    export: Callable[[OmniPolicy, Path], Path] | None = None
    options: tuple[LoadingOption, ...] = ()


RELEASED_LAYOUTS: list[ReleasedLayout] = []


def register_released_layout(layout: ReleasedLayout) -> ReleasedLayout:
    RELEASED_LAYOUTS.append(layout)
    return layout


def loading_options() -> list[LoadingOption]:
    """Every registered backend's loading options."""
    return [option for layout in RELEASED_LAYOUTS for option in layout.options]


def resolve_device(device: str | torch.device = "auto", dtype: str | torch.dtype = "auto"
                   ) -> tuple[torch.device, torch.dtype]:
    """CUDA when available and bf16 where it is supported; otherwise the CPU in float32."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if dtype == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if cuda_bf16 else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return device, dtype


def decoder_layers(lm: nn.Module) -> list[nn.Module]:
    """The transformer blocks of a Hugging Face decoder (Qwen2, Llama, Qwen2.5-Omni's thinker
    name them *DecoderLayer; encoder blocks inside a thinker are named otherwise)."""
    layers = [m for m in lm.modules() if type(m).__name__.endswith("DecoderLayer")]
    if not layers:
        raise ConfigError(f"no decoder layers found in {type(lm).__name__}")
    return layers


class OmniPolicy(SharedPrefixLM, nn.Module, ABC):
    """Video and audio in, text out; see the module docstring for the contract."""

    backend: ClassVar[str]
    config: PolicyConfig
    lm: nn.Module  # a Hugging Face causal LM taking `inputs_embeds`
    feature_cache: FeatureCache | None

    # ------------------------------------------------------------------ what each backend implements

    @abstractmethod
    def encode(self, media: ClipMedia) -> dict:
        """The clip's modality embeddings, keyed by modality, for what the clip has; frozen
        encoders read and fill `feature_cache`."""

    @abstractmethod
    def splice(self, text: str, embeddings: dict, messages: list[dict]) -> Prompt:
        """The rendered chat prompt `text` with each placeholder of `embeddings`' modalities (all
        present: `build_inputs` checked) replaced by its embeddings, as the backend's LM reads them;
        `messages` for a backend whose splice depends on the question (HumanOmni's gate)."""

    @abstractmethod
    def encoders(self) -> dict[str, nn.Module]:
        """Modality -> the module that turns that modality's media into features (a tower)."""

    @abstractmethod
    def replace_encoder(self, modality: str, module: nn.Module) -> None:
        """Put `module` in place of the modality's encoder (GRPO's reference shares frozen ones)."""

    def adapters(self) -> list[nn.Module]:
        """Modules outside the LM between the encoders and the LM (projectors)."""
        return []

    @classmethod
    @abstractmethod
    def tiny_variants(cls) -> dict[str, Callable[[], OmniPolicy]]:
        """Builders of tiny random instances, one per code path worth testing (the test matrix)."""

    # ------------------------------------------------------------------ media

    def build_inputs(self, messages: list[dict], embeddings: dict, add_generation_prompt: bool = True) -> Prompt:
        """Render the chat template and splice each ``<video>``/``<audio>`` placeholder's embeddings
        in (`splice`); a placeholder whose modality the clip lacks is an error."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
        used = [m for m, placeholder in PLACEHOLDERS.items() if placeholder in text]
        absent = [m for m in used if m not in embeddings]
        if absent:
            raise ValueError(f"the prompt has {', '.join(PLACEHOLDERS[m] for m in absent)} but the clip has no "
                             f"{' or '.join(absent)}")
        return self.splice(text, {m: embeddings[m] for m in used}, messages)

    def join_pieces(self, pieces: list[torch.Tensor]) -> Prompt:
        """A prompt from pieces in order: token ids ``[n]`` (long, embedded here) and media
        embeddings ``[T, H]`` (float, marked -1 in the prompt's ids)."""
        embed = self.lm.get_input_embeddings()
        embeds, ids = [], []
        for piece in pieces:
            if piece.is_floating_point():
                embeds.append(piece.to(embed.weight.dtype))
                ids.append(torch.full((len(piece),), -1, device=self.device))
            elif len(piece):
                embeds.append(embed(piece.to(self.device)))
                ids.append(piece.to(self.device))
        ids = torch.cat(ids)
        return Prompt(torch.cat(embeds), ids, torch.arange(len(ids), device=self.device))

    def prompt(self, messages: list[dict], media: ClipMedia) -> Prompt:
        return self.build_inputs(messages, self.encode(media))

    def read_clip(self, video: str | Path | None, audio: str | Path | None, modalities=MODALITIES) -> ClipMedia:
        """Decode what the encoders read, with this policy's frame count, frame size and audio
        length; a modality whose features the feature cache already holds is not decoded. A
        stream the file lacks is left out (the prompt then carries only the placeholders that
        exist); other media errors propagate."""
        media, cached = ClipMedia(), []
        wanted = set(modalities) & set(self.encoders())
        hashes: dict[str, str] = {}  # a clip's video and audio are often one file
        for modality, path in (("video", video), ("audio", audio)):
            if not path or modality not in wanted:
                continue
            if str(path) not in hashes:
                check_file(Path(path))
                hashes[str(path)] = content_hash(path)
            key = hashes[str(path)]
            setattr(media, f"{modality}_key", key)
            if self.has_cached_features(modality, key):
                cached.append(modality)
                continue
            try:
                if modality == "video" and self.finds_faces():
                    media.frames, media.faces = read_face_frames(path, self.config.num_frames, self.config.frame_size,
                                                                 **self.frame_reading())
                elif modality == "video":
                    media.frames = read_frames(path, self.config.num_frames, self.config.frame_size,
                                               **self.frame_reading())
                else:
                    media.audio = read_audio(path, max_seconds=self.config.max_audio_seconds)
            except MissingStreamError:
                setattr(media, f"{modality}_key", None)
        media.cached = tuple(cached)
        return media

    def readable_clips(self, rows: Iterable, modalities=MODALITIES,
                       statistics_by: str | None = None) -> Iterator[tuple[object, ClipMedia]]:
        """(row, media) for each row (anything with `video` and `audio` paths) whose media can be
        read, in order, each clip in its statistics group (`statistics_group`) by `statistics_by`;
        unreadable rows are skipped, for the caller's own pass over the rows to report (a training
        stream, prediction)."""
        for row in rows:
            try:
                media = self.read_clip(row.video, row.audio, modalities)
            except R1OmniError:
                continue
            media.statistics = statistics_group(row, statistics_by)
            yield row, media

    def feature_standardizers(self) -> dict[str, nn.Module]:
        """Modality -> `FeatureStandardizer` for towers whose features are standardised by
        corpus statistics (see r1omni.models.standardize); backends without any return {}."""
        return {}

    def has_cached_features(self, modality: str, key: str) -> bool:
        """Whether the feature cache holds this modality's encoder features for media `key`
        (then the clip need not be decoded). Backends that need the decoded media anyway say no."""
        return False

    def frame_reading(self) -> dict:
        """How `read_clip` picks and resizes frames, beyond their number and size: keyword
        arguments of `r1omni.media.read_frames` (e.g. a backend's official sampling formula)."""
        return {}

    def finds_faces(self) -> bool:
        """Whether the video encoder reads faces (a tower's `wants_face`): `read_clip` then crops
        each frame to the detected face (r1omni.media.faces)."""
        return bool(getattr(self.encoders().get("video"), "wants_face", False))

    def media_settings(self) -> str:
        """The decoding settings that shape an encoder's input (part of a feature-cache key)."""
        settings = f"{self.config.num_frames}x{self.config.frame_size}|{self.config.max_audio_seconds}"
        reading = self.frame_reading()
        settings += f"|{sorted(reading.items())}" if reading else ""
        return settings + ("|faces" if self.finds_faces() else "")

    # ------------------------------------------------------------------ training

    def frozen_encoders(self) -> dict[str, nn.Module]:
        return {m: e for m, e in self.encoders().items() if m in self.config.frozen}

    def train(self, mode: bool = True):
        """Train mode for what trains; frozen encoders stay in eval mode, so that their BatchNorm
        statistics and dropout stay as pre-trained (and their cached features stay valid)."""
        super().train(mode)
        for encoder in self.frozen_encoders().values():
            encoder.eval()
        return self

    @property
    def end_of_turn_id(self) -> int:
        """The token that closes an assistant turn: ChatML's <|im_end|>, which every backend's chat
        template ends a turn with (SFT targets and GRPO completions learn to stop with it)."""
        return self.tokenizer.convert_tokens_to_ids(IM_END)

    def input_embeddings(self) -> nn.Embedding:
        """The LM's input embedding (the alignment losses read its rows)."""
        return self.lm.get_input_embeddings()

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters: ``encoders`` (encoders and adapters, which train at
        ``train.encoder_lr_scale`` times the rate) and ``lm`` (the rest)."""
        outside = {id(p) for module in [*self.encoders().values(), *self.adapters()] for p in module.parameters()}
        groups: dict[str, list[nn.Parameter]] = {"lm": [], "encoders": []}
        for parameter in self.parameters():
            if parameter.requires_grad:
                groups["encoders" if id(parameter) in outside else "lm"].append(parameter)
        return groups

    def shard_units(self) -> ShardUnits:
        """Decoder layers and the (tied) embedding inside the LM, trainable encoders and adapters
        as their own units; frozen encoders stay whole."""
        inner: list = list(decoder_layers(self.lm))
        embed, head = self.lm.get_input_embeddings(), self.lm.get_output_embeddings()
        # Prompts are embedded by calling the embedding directly, outside the LM's forward, so it
        # needs hooks of its own; tied weights must share one unit.
        inner.append([embed, head] if head is not None and head.weight is embed.weight else embed)
        inside_lm = {id(m) for m in self.lm.modules()}
        outer, keep_whole = list(self.adapters()), set()
        for modality, encoder in self.encoders().items():
            if modality not in self.config.frozen:
                (inner if id(encoder) in inside_lm else outer).append(encoder)
            elif id(encoder) in inside_lm:  # a frozen encoder outside the LM is simply not sharded
                keep_whole |= set(encoder.parameters())
        return ShardUnits(inner, self.lm, outer, keep_whole)

    def add_lora(self, r: int = 16, alpha: int = 32, dropout: float = 0.0, **settings) -> None:
        """Train low-rank adapters instead of the LM's weights (peft); saved and reloaded with
        the policy."""
        if self.config.lora:
            raise ConfigError("this policy already has LoRA adapters")
        self.config.lora = {"r": r, "lora_alpha": alpha, "lora_dropout": dropout, **settings}
        self._inject_lora(self.config.lora)

    def language_model(self) -> nn.Module:
        """The decoder whose weights `config.frozen: [lm]` freezes (the thinker's own for Qwen2.5-Omni)."""
        return self.lm

    def finish_building(self) -> None:
        """What every backend's constructor ends with, once its parts exist: no feature cache yet,
        the parts `config.frozen` names frozen, LoRA adapters when `config.lora`, and frozen
        encoders in eval mode."""
        self.feature_cache = None
        for part in self.config.frozen:
            module = self.language_model() if part == "lm" else self.encoders().get(part)
            if module is not None:
                module.requires_grad_(False)
        if self.config.lora:
            self._inject_lora(self.config.lora)
        self.train(self.training)

    def _inject_lora(self, settings: dict) -> None:
        """Adapters on every linear layer of the LM's decoder blocks (not the encoders, not the
        output head); the LM's other weights stop training."""
        from peft import LoraConfig, inject_adapter_in_model

        names = {id(m): n for n, m in self.lm.named_modules()}
        targets = sorted(f"{names[id(layer)]}.{n}" for layer in decoder_layers(self.lm)
                         for n, m in layer.named_modules() if isinstance(m, nn.Linear))
        try:
            lora = LoraConfig(**{"target_modules": targets, **settings})
        except TypeError as err:
            raise ConfigError(f"lora settings: {err}") from None
        encoder_params = {id(p) for e in self.encoders().values() for p in e.parameters()}
        inject_adapter_in_model(lora, self.lm)
        for name, parameter in self.lm.named_parameters():
            if id(parameter) not in encoder_params:
                parameter.requires_grad_("lora_" in name)

    def enable_checkpointing(self) -> None:
        """Recompute the LM's activations in the backward pass instead of storing them."""
        if hasattr(self.lm, "activation_checkpointing_enable"):  # transformers 5 renamed it
            self.lm.activation_checkpointing_enable()
        else:
            self.lm.gradient_checkpointing_enable()

    def weights_changed(self) -> None:
        """Call after an optimizer step or a load: cached identities of trainable encoders (their
        weights fingerprints) are stale. Frozen encoders keep theirs."""

    def reference_copy(self) -> OmniPolicy:
        """A frozen copy for GRPO's KL term that shares this policy's frozen encoders."""
        shared = [*self.frozen_encoders().values(), self.tokenizer, self.feature_cache]
        reference = copy.deepcopy(self, memo={id(x): x for x in shared})  # memo entries are reused, not copied
        return reference.eval().requires_grad_(False)

    def share_frozen_encoders(self, other: OmniPolicy) -> None:
        """Use `other`'s frozen encoders (and its feature cache and feature-standardisation
        statistics, fitted once and never trained) instead of this policy's own."""
        for modality, encoder in other.frozen_encoders().items():
            self.replace_encoder(modality, encoder)
        mine = self.feature_standardizers()
        for modality, standardizer in other.feature_standardizers().items():
            if modality in mine:
                mine[modality].load_state_dict(standardizer.state_dict())
                mine[modality].groups = dict(standardizer.groups)
        self.feature_cache = other.feature_cache

    # ------------------------------------------------------------------ persistence

    def save_pretrained(self, directory: str | Path, weights: dict[str, torch.Tensor] | None = None) -> Path:
        """Weights (safetensors), `r1omni_config.json` and the tokenizer with its chat template.
        `weights`: a full state dict to write instead of the module's own (a sharded policy's)."""
        from safetensors.torch import save_file, save_model

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        if weights is None:
            save_model(self, str(directory / WEIGHTS_NAME))
        else:
            save_file({k: v.contiguous() for k, v in weights.items()}, str(directory / WEIGHTS_NAME),
                      metadata={"format": "pt"})
        self.tokenizer.save_pretrained(directory)
        return directory

    @classmethod
    def saved_parts(cls, directory: Path) -> dict:
        """Constructor arguments a backend saves beside the weights besides the tokenizer (e.g.
        a second tokenizer), read back from a saved folder."""
        return {}

    @staticmethod
    def from_pretrained(directory: str | Path, device: str | torch.device = "auto",
                        dtype: str | torch.dtype = "auto") -> OmniPolicy:
        """Load a saved policy of any registered backend. ``device="auto"`` takes CUDA when present,
        else the CPU; ``dtype="auto"`` takes bfloat16 on a GPU that supports it, else float32."""
        from safetensors.torch import load_model
        from transformers import AutoTokenizer

        directory = Path(directory)
        config_path = directory / CONFIG_NAME
        if not config_path.is_file():
            raise ConfigError(f"{directory}: not a saved r1omni model (no {CONFIG_NAME})")
        try:
            config = PolicyConfig(**json.loads(config_path.read_text()))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{config_path}: {err}") from None
        config.backend = ALIASES.get(config.backend, config.backend)
        config.validate()
        backend = BACKENDS[config.backend]
        policy = backend(config, AutoTokenizer.from_pretrained(directory), **backend.saved_parts(directory))
        try:
            load_model(policy, str(directory / WEIGHTS_NAME))
        except (RuntimeError, OSError) as err:
            raise ConfigError(f"{directory / WEIGHTS_NAME}: weights do not fit {CONFIG_NAME} ({err})") from None
        device, dtype = resolve_device(device, dtype)
        # Frozen encoders in eval mode from the start: a tower rebuilt from its config is a new
        # module in train mode, whose BatchNorm would update its statistics on every clip.
        return policy.to(device=device, dtype=dtype).train(policy.training)
