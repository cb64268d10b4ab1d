"""OmniPolicy: video and audio in, text out, on any Hugging Face causal LM.

A clip is encoded by modality towers and projected to the LM's width; a chat prompt's
``<video>`` / ``<audio>`` placeholders expand into those embeddings between start/end markers.
The G completions of one prompt share its prefix: `generate` prefills each prompt once and
samples G continuations from copies of its KV cache, and `completion_logprobs` runs the prefix
once with the G completions attending to it, with gradients equal to the repeated computation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from r1omni.models.cache import FeatureCache, array_hash
from r1omni.models.tokenizer import MODALITY_MARKERS, stop_token_ids
from r1omni.models.towers import ConfigError, Tower, build_tower
from r1omni.prompts import AUDIO_PLACEHOLDER, VIDEO_PLACEHOLDER

PLACEHOLDERS = {"video": VIDEO_PLACEHOLDER, "audio": AUDIO_PLACEHOLDER}
CONFIG_NAME, WEIGHTS_NAME = "r1omni_config.json", "model.safetensors"


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

    def validate(self) -> None:
        if self.backend not in ("nano", "composed"):
            raise ConfigError(f"unknown backend {self.backend!r}; choose nano or composed")
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


@dataclass
class Prompt:
    """One prompt ready for the LM: input embeddings ``[L, H]`` and token ids ``[L]`` (-1 where a
    modality embedding stands)."""

    embeds: torch.Tensor
    ids: torch.Tensor


@dataclass
class Completion:
    ids: list[int]  # sampled tokens, stop token excluded
    text: str
    stopped: bool  # ended on a stop token rather than the length limit


def _build_lm(config: PolicyConfig) -> nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    data = dict(config.lm)
    try:
        lm_config = AutoConfig.for_model(data.pop("model_type"), **data)
        return AutoModelForCausalLM.from_config(lm_config, attn_implementation=config.attn_implementation)
    except ValueError as err:
        raise ConfigError(f"cannot build the LM: {err}") from None


class OmniPolicy(nn.Module):
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
        width = self.lm.get_input_embeddings().embedding_dim
        self.projectors = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(t.out_dim, config.projector_hidden), nn.GELU(),
                             nn.Linear(config.projector_hidden, width))
            for m, t in self.towers.items()
        })
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

    @property
    def device(self) -> torch.device:
        return self.lm.get_input_embeddings().weight.device

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
        return Prompt(torch.cat(embeds), torch.cat(ids))

    def prompt(self, messages: list[dict], media: ClipMedia) -> Prompt:
        return self.build_inputs(messages, self.encode(media))

    # ------------------------------------------------------------------ LM passes

    @staticmethod
    def _collate(prompts: list[Prompt]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded prompt embeddings ``[P, Lp, H]`` and attention mask ``[P, Lp]``."""
        length = max(len(p.embeds) for p in prompts)
        width = prompts[0].embeds.shape[-1]
        embeds = prompts[0].embeds.new_zeros(len(prompts), length, width)
        mask = torch.zeros(len(prompts), length, dtype=torch.long, device=embeds.device)
        for i, p in enumerate(prompts):
            embeds[i, length - len(p.embeds):] = p.embeds
            mask[i, length - len(p.embeds):] = 1
        return embeds, mask

    def _pad_completions(self, completions: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded completion ids ``[B, Lc]`` and mask ``[B, Lc]``."""
        length = max(1, max(len(c) for c in completions))
        ids = torch.full((len(completions), length), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(completions), length, dtype=torch.long)
        for i, c in enumerate(completions):
            ids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
            mask[i, : len(c)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _prefill(self, prompts: list[Prompt]):
        """Run the prompts once: next-token logits ``[P, V]``, the KV cache, the mask."""
        embeds, mask = self._collate(prompts)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True)
        return out.logits[:, -1], out.cache, mask

    def completion_logits(self, prompts: list[Prompt], completions: list[list[int]],
                          shared_prefix: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits that predict each completion token, ``[B, Lc, V]``, and the completion mask.

        `completions` holds G = B / P completions per prompt, grouped by prompt. With
        `shared_prefix` each prompt runs once and its G completions attend to its cached keys
        and values; without, every completion runs with its own copy of the prompt.
        """
        if len(completions) % len(prompts):
            raise ValueError(f"{len(completions)} completions do not split evenly over {len(prompts)} prompts")
        group = len(completions) // len(prompts)
        ids, comp_mask = self._pad_completions(completions)
        if shared_prefix:
            last, cache, mask = self._prefill(prompts)  # [P, V]
            cache.batch_repeat_interleave(group)
            mask = mask.repeat_interleave(group, 0)  # [B, Lp]
            positions = mask.sum(-1, keepdim=True) + torch.arange(ids.shape[1], device=ids.device)
            out = self.lm(input_ids=ids, attention_mask=torch.cat([mask, comp_mask], 1),
                          position_ids=positions, cache=cache)
            logits = torch.cat([last.repeat_interleave(group, 0)[:, None], out.logits[:, :-1]], 1)
        else:
            embeds, mask = self._collate(prompts)
            embeds, mask = embeds.repeat_interleave(group, 0), mask.repeat_interleave(group, 0)
            full = torch.cat([embeds, self.lm.get_input_embeddings()(ids)], 1)
            full_mask = torch.cat([mask, comp_mask], 1)
            positions = (full_mask.cumsum(-1) - 1).clamp(min=0)
            out = self.lm(inputs_embeds=full, attention_mask=full_mask, position_ids=positions)
            logits = out.logits[:, mask.shape[1] - 1 : -1]
        return logits, comp_mask

    def completion_logprobs(self, prompts: list[Prompt], completions: list[list[int]],
                            shared_prefix: bool = True, temperature: float = 1.0
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probabilities of the completions ``[B, Lc]`` (0 at padding) and mask."""
        logits, mask = self.completion_logits(prompts, completions, shared_prefix)
        ids, _ = self._pad_completions(completions)
        logprobs = torch.log_softmax(logits.float() / temperature, -1).gather(-1, ids[..., None])[..., 0]
        return logprobs * mask, mask

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def generate(self, prompts: list[Prompt], num_generations: int = 1, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int = 128, stop: list[int] | None = None,
                 seed: int | None = None) -> list[list[Completion]]:
        """Sample `num_generations` completions per prompt from one prefill per prompt.

        Temperature 0 decodes greedily. Returns one list of completions per prompt.
        """
        generator = torch.Generator(device=self.device)
        if seed is not None:
            generator.manual_seed(seed)
        else:
            generator.seed()
        stops = torch.tensor(stop if stop is not None else self.stop_ids, device=self.device)
        logits, cache, mask = self._prefill(prompts)
        cache.batch_repeat_interleave(num_generations)
        logits = logits.repeat_interleave(num_generations, 0)  # [B, V]
        mask = mask.repeat_interleave(num_generations, 0)  # [B, Lp]
        rows = len(logits)
        position = mask.sum(-1, keepdim=True)  # [B, 1]
        done = torch.zeros(rows, dtype=torch.bool, device=self.device)
        stopped = torch.zeros_like(done)
        tokens = []
        for _ in range(max_new_tokens):
            token = _sample(logits, temperature, top_p, generator)  # [B]
            token = torch.where(done, self.tokenizer.pad_token_id, token)
            hit = torch.isin(token, stops) & ~done
            stopped |= hit
            tokens.append(torch.where(hit, -1, token))
            done |= hit
            if done.all():
                break
            mask = torch.cat([mask, torch.ones_like(position)], 1)
            out = self.lm(input_ids=token[:, None], attention_mask=mask, position_ids=position, cache=cache)
            cache, logits, position = out.cache, out.logits[:, -1], position + 1
        table = torch.stack(tokens, 1).tolist() if tokens else [[] for _ in range(rows)]
        results = []
        for row, sequence in enumerate(table):
            ids = sequence[: sequence.index(-1)] if -1 in sequence else sequence
            results.append(Completion(ids, self.tokenizer.decode(ids, skip_special_tokens=False),
                                      bool(stopped[row])))
        return [results[i : i + num_generations] for i in range(0, rows, num_generations)]

    # ------------------------------------------------------------------ persistence

    def save_pretrained(self, directory: str | Path) -> Path:
        """Weights (safetensors), `r1omni_config.json` and the tokenizer with its chat template."""
        from safetensors.torch import save_model

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        save_model(self, str(directory / WEIGHTS_NAME))
        self.tokenizer.save_pretrained(directory)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "auto",
                        dtype: str | torch.dtype = "auto") -> OmniPolicy:
        """Load a saved policy. ``device="auto"`` takes CUDA when present, else the CPU;
        ``dtype="auto"`` takes bfloat16 on a GPU that supports it, else float32."""
        from safetensors.torch import load_model
        from transformers import AutoTokenizer

        directory = Path(directory)
        config_path = directory / CONFIG_NAME
        if not config_path.is_file():
            raise ConfigError(f"{directory}: not a saved r1omni model (no {CONFIG_NAME})")
        data = json.loads(config_path.read_text())
        try:
            config = PolicyConfig(**data)
        except TypeError as err:
            raise ConfigError(f"{config_path}: {err}") from None
        policy = cls(config, AutoTokenizer.from_pretrained(directory))
        try:
            load_model(policy, str(directory / WEIGHTS_NAME))
        except (RuntimeError, OSError) as err:
            raise ConfigError(f"{directory / WEIGHTS_NAME}: weights do not fit {CONFIG_NAME} ({err})") from None
        for tower in policy.towers.values():
            tower.forget_fingerprint()
        device, dtype = resolve_device(device, dtype)
        return policy.to(device=device, dtype=dtype)


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


def _sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """One token per row ``[B]`` from logits ``[B, V]`` (greedy at temperature 0)."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, -1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(-1, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < top_p  # always keeps the top token
        sorted_probs = sorted_probs * keep
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
