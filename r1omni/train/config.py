"""Training configuration: one dataclass tree, loaded from YAML, with dotted CLI overrides.

``r1omni grpo --config configs/x.yaml train.lr=2e-6 grpo.num_generations=4``. Every value is
checked before any model loads; the resolved config is saved beside the checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from r1omni.checks import choice_problems, is_number, range_problems
from r1omni.errors import ConfigError
from r1omni.labels import vocabulary
from r1omni.models.presets import PRESETS as MODEL_PRESETS
from r1omni.models.standardize import GROUPINGS
from r1omni.prompts import PROMPTS
from r1omni.rl.settings import PRESETS as GRPO_PRESETS
from r1omni.rl.settings import GRPOSettings
from r1omni.train.alignment import measured_levels

LORA_KEYS = ("r", "alpha", "dropout")  # what `OmniPolicy.add_lora` takes from model.lora
SFT_TARGETS = {"reasoning": "rationale", "label": "label", "caption": "caption"}  # target: the row field it needs


@dataclass
class ModelConfig:
    path: str | None = None  # a saved r1omni model to start from; None builds `preset` fresh
    preset: str = "nano"  # r1omni.models.PRESETS (nano trains its tokenizer on the training rows' texts)
    preset_options: dict = field(default_factory=dict)  # e.g. {vocab_size: 4096} for nano
    gradient_checkpointing: bool = False
    bf16: bool = False  # autocast the forward passes to bfloat16
    lora: dict | None = None  # e.g. {r: 16, alpha: 32}: train LoRA adapters on the LM (peft)
    # Where frozen towers' outputs are kept (each clip is encoded once, not every step): a folder,
    # "default" ($R1OMNI_CACHE or ~/.cache/r1omni/features) or "none" (YAML reads "off" as false).
    feature_cache: str = "default"


@dataclass
class DataConfig:
    train: str = ""  # manifest JSONL
    val: str | None = None  # manifest for periodic evaluation
    modalities: list[str] = field(default_factory=lambda: ["video", "audio"])
    prompt: str = "r1omni"  # a prompt of r1omni.prompts.PROMPTS
    labels: str = "dfew"  # label vocabulary for the `options` prompt and evaluation
    max_rows: int | None = None  # use only the first rows (quick runs)
    val_rows: int | None = None
    # Keep decoded clips in memory for later epochs, up to this many MB (0: decode every time).
    # A 3 s synthetic clip takes about 0.5 MB; decoding is about a fifth of a nano SFT step.
    media_cache_mb: float = 0
    # Standardise a model's tower features by each corpus's (or speaker's) own statistics in
    # training, not by those of all the training clips together: "corpus", "speaker" or None.
    # Rows of several corpora then each arrive centred as a test corpus does under `r1omni eval
    # --standardize corpus` (r1omni.models.standardize).
    standardize_by: str | None = None


@dataclass
class TrainConfig:
    output_dir: str = "runs/train"
    lr: float = 1e-6
    # Learning-rate factor for towers and projectors. Trained from scratch at the LM's rate they
    # collapse to clip-independent outputs before the LM learns to read them (measured on nano).
    encoder_lr_scale: float = 1.0
    weight_decay: float = 0.0
    scheduler: str = "cosine"  # cosine | linear | constant
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs
    batch_size: int = 16  # sequences per optimizer step over all processes (GRPO: prompts x num_generations)
    # Sequences per forward/backward on each process (memory per device; the result is the same
    # for any value). GRPO rounds it down to whole groups of num_generations.
    micro_batch_size: int = 8
    seed: int = 0
    log_every: int = 1
    eval_every: int | None = None
    save_every: int | None = None
    save_total_limit: int | None = None  # checkpoints kept, the newest (TRL's name); None keeps all
    max_bad_steps: int = 3  # consecutive non-finite steps that stop the run
    report_to: list[str] = field(default_factory=list)  # "tensorboard", "wandb"
    # Several processes: ddp (whole model on each) | fsdp (sharded) | auto (accelerate config's choice)
    distributed: str = "auto"


@dataclass
class SFTSettings:
    target: str = "reasoning"  # reasoning | label | caption
    max_length: int = 1024
    # Label alignment (r1omni.train.alignment): the weight of a loss pulling each clip's mean
    # media embedding towards its label word's embedding beside the SFT loss (0: off), and
    # epochs of a projector-only warm-up on that loss before SFT (no LM computation; 0: none).
    # Both need data.labels to hold every training label.
    label_alignment: float = 0.0
    alignment_epochs: int = 0
    # The warm-up's learning rate (0: the projectors' rate in SFT, train.lr x train.encoder_lr_scale),
    # so that a warmed-up projector can be held still in SFT (train.encoder_lr_scale=0).
    alignment_lr: float = 0.0
    # Level alignment: the weight of the same kind of loss towards the words of each clip's
    # measured voice levels (rows from r1omni data describe-voice), beside SFT and in the warm-up.
    level_alignment: float = 0.0
    # Weight each row's SFT and label-alignment loss by n / (classes x its label's count), as
    # scikit-learn's class_weight="balanced": a corpus's rare classes count as much as its common ones.
    class_balance: bool = False
    # Longest greedy answer when scoring the validation rows (train.eval_every).
    validation_max_tokens: int = 512

    # ------------------------------------------------------------------ what set-up asks (as GRPOSettings)

    def sequences_per_example(self) -> int:
        return 1

    def updates_per_step(self) -> int:
        return 1

    def needs_reference(self) -> bool:
        return False

    def validation_tokens(self) -> int:
        return min(self.max_length, self.validation_max_tokens)

    def check_rows(self, rows, labels: str, sharded: bool) -> None:
        """Rows that lack what the target or the alignment losses need are refused before training."""
        field_ = SFT_TARGETS[self.target]
        lacking = [r.id for r in rows if not getattr(r, field_)]
        if lacking:
            raise ConfigError(f"sft.target={self.target} needs '{field_}' in every row; "
                              f"{len(lacking)} rows lack it (first: {lacking[:3]})")
        if self.label_alignment or self.alignment_epochs:
            outside = sorted({r.label for r in rows} - set(vocabulary(labels)))
            if outside:
                raise ConfigError(f"sft.label_alignment and alignment_epochs need every label in data.labels="
                                  f"{labels} ({', '.join(vocabulary(labels))}); the rows also have "
                                  f"{', '.join(outside)}")
        if self.level_alignment and not any(measured_levels(r) for r in rows):
            raise ConfigError("sft.level_alignment needs rows with measured voice levels (meta.acoustics, written by "
                              "r1omni data describe-voice); none of the training rows has them")
        if sharded and (self.label_alignment or self.alignment_epochs or self.level_alignment):
            raise ConfigError("sft.label_alignment, level_alignment and alignment_epochs read the whole embedding "
                              "matrix; they are not available with fsdp (use ddp)")

    def problems(self) -> list[str]:
        return choice_problems([("sft.target", self.target, tuple(SFT_TARGETS))]) + range_problems([
            ("sft.max_length", self.max_length, ">= 2"), ("sft.label_alignment", self.label_alignment, ">= 0"),
            ("sft.alignment_epochs", self.alignment_epochs, ">= 0"), ("sft.alignment_lr", self.alignment_lr, ">= 0"),
            ("sft.level_alignment", self.level_alignment, ">= 0"),
            ("sft.validation_max_tokens", self.validation_max_tokens, ">= 1")])


@dataclass
class RunConfig:
    kind: str = "grpo"  # grpo | sft
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    sft: SFTSettings = field(default_factory=SFTSettings)

    def to_dict(self) -> dict:
        return asdict(self)

    def stage(self) -> SFTSettings | GRPOSettings:
        """The settings of the stage this run trains (its `kind`)."""
        return self.grpo if self.kind == "grpo" else self.sft

    def validate(self, check_files: bool = True) -> None:
        problems = []
        t = self.train
        if self.kind not in ("grpo", "sft"):
            problems.append(f"kind must be grpo or sft, got {self.kind!r}")
        if t.micro_batch_size < 1 or t.batch_size < 1:
            problems.append(f"train.batch_size ({t.batch_size}) and train.micro_batch_size ({t.micro_batch_size}) "
                            "must be positive")
        problems += self.grpo.problems(t.batch_size, running=self.kind == "grpo") + self.sft.problems()
        problems += choice_problems([("train.scheduler", t.scheduler, ("cosine", "linear", "constant")),
                                     ("train.distributed", t.distributed, ("auto", "ddp", "fsdp")),
                                     ("data.prompt", self.data.prompt, tuple(PROMPTS)),
                                     ("model.preset", self.model.preset, tuple(MODEL_PRESETS))])
        if self.data.standardize_by is not None:
            problems += choice_problems([("data.standardize_by", self.data.standardize_by, GROUPINGS)])
        if not set(self.data.modalities) or not set(self.data.modalities) <= {"video", "audio"}:
            problems.append(f"data.modalities must be a non-empty subset of video, audio, got {self.data.modalities}")
        problems += range_problems(self._ranges())
        problems += self._lora_problems()
        if check_files:
            problems += self._file_problems()
        if self.model.path and Path(self.model.path).resolve().is_relative_to(Path(t.output_dir).resolve()):
            problems.append(f"train.output_dir: {t.output_dir} is or holds model.path ({self.model.path}); the run "
                            "would overwrite the model it starts from: choose another output_dir")
        if problems:
            raise ConfigError("invalid config:\n  " + "\n  ".join(problems))

    def _file_problems(self) -> list[str]:
        problems = [] if self.data.train else ["data.train (a manifest) is required"]
        for name, value in (("data.train", self.data.train), ("data.val", self.data.val),
                            ("model.path", self.model.path)):
            if value and not Path(value).exists():
                problems.append(f"{name}: {value} does not exist")
        if Path(self.train.output_dir).exists() and not Path(self.train.output_dir).is_dir():
            problems.append(f"train.output_dir: {self.train.output_dir} is a file, not a folder")
        return problems

    def _ranges(self) -> list[tuple[str, float | int | None, str]]:
        """(name, value, rule) for every number of the train and data sections with a range."""
        t, d = self.train, self.data
        return [("train.lr", t.lr, "> 0"), ("train.encoder_lr_scale", t.encoder_lr_scale, ">= 0"),
                ("train.weight_decay", t.weight_decay, ">= 0"), ("train.warmup_ratio", t.warmup_ratio, "in [0, 1)"),
                ("train.max_grad_norm", t.max_grad_norm, "> 0"), ("train.epochs", t.epochs, "> 0"),
                ("train.max_steps", t.max_steps, ">= 1"), ("train.seed", t.seed, ">= 0"),
                ("train.log_every", t.log_every, ">= 1"), ("train.eval_every", t.eval_every, ">= 1"),
                ("train.save_every", t.save_every, ">= 1"), ("train.save_total_limit", t.save_total_limit, ">= 1"),
                ("train.max_bad_steps", t.max_bad_steps, ">= 1"),
                ("data.max_rows", d.max_rows, ">= 1"), ("data.val_rows", d.val_rows, ">= 1"),
                ("data.media_cache_mb", d.media_cache_mb, ">= 0")]

    def _lora_problems(self) -> list[str]:
        lora = self.model.lora
        if lora is None:
            return []
        unknown = sorted(set(lora) - set(LORA_KEYS))
        if unknown:
            return [f"model.lora: unknown keys {unknown}; known: {', '.join(LORA_KEYS)}"]
        checks = [("r", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
                  ("alpha", lambda v: is_number(v) and v > 0, "a number > 0"),
                  ("dropout", lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)")]
        return [f"model.lora.{key} must be {rule}, got {lora[key]!r}" for key, valid, rule in checks
                if key in lora and not valid(lora[key])]


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def _coerce(value, hint, where: str):
    """Check `value` against a field's type, converting what YAML leaves as text ("1e-6")."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if value is None:
        if type(None) in typing.get_args(hint):
            return None
        raise ConfigError(f"{where} may not be empty")
    base = args[0] if len(args) == 1 and typing.get_origin(hint) in (typing.Union, types.UnionType) else hint
    origin = typing.get_origin(base) or base
    try:
        if origin is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if origin in (int, float):
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise ConfigError(f"{where} must be a finite number, got {value!r}")
            if origin is int:
                if not number.is_integer():
                    raise ValueError
                return int(number)
            return number
        if origin is str:
            return str(value)
        if origin is list:
            return list(value) if isinstance(value, (list, tuple)) else [value]
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError
            key_type, value_type = typing.get_args(base) or (str, object)
            if value_type is object:
                return dict(value)
            return {str(k): _coerce(v, value_type, f"{where}.{k}") for k, v in value.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {getattr(origin, '__name__', origin)}, got {value!r}") from None
    return value


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown keys {unknown} in {where or 'config'}; known: {sorted(known)}")
    values = {}
    for name, value in data.items():
        nested = known[name].default_factory if known[name].default_factory is not dataclasses.MISSING else None
        if nested is not None and dataclasses.is_dataclass(nested):
            values[name] = _build(nested, value, f"{where}.{name}".lstrip("."))
        else:
            values[name] = _coerce(value, hints[name], f"{where}.{name}".lstrip("."))
    return cls(**values)


def parse_override(item: str) -> tuple[list[str], object]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"overrides look like section.key=value, got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot read the value in {item!r}: {err}") from None
    return key.split("."), value


def load_config(path: str | Path | None = None, overrides: list[str] = (), kind: str | None = None,
                check_files: bool = True) -> RunConfig:
    """Defaults, then the preset the file or overrides name, then the file, then the overrides."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {key} is not a section")
        node[keys[-1]] = value
    if kind is not None:
        data["kind"] = kind
    section = data.get("grpo") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"grpo must be a mapping, got {section!r}")
    preset = section.get("preset")
    if preset is not None:
        if not isinstance(preset, str) or preset not in GRPO_PRESETS:
            raise ConfigError(f"grpo.preset must be one of {', '.join(GRPO_PRESETS)}, got {preset!r}")
        data = _merge(GRPO_PRESETS[preset], data)
    config = _build(RunConfig, data, "")
    config.validate(check_files)
    return config


def save_config(config: RunConfig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path
