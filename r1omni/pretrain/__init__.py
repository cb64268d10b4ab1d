"""`r1omni pretrain`: the nano base model, built once and shipped, as HumanOmni is for R1-Omni
(this package also trains r1omni's own face tower, `face_tower`: `r1omni pretrain-face`).

Three phases on a synthetic world of its own (seed 1000: people the demo's worlds never show):
1. perception: the towers regress every clip's recorded cues (action units, prosody) under
   generic augmentation (`perception`, `augment`); no emotion label is used;
2. the towers are frozen (their features go to the feature cache from then on);
3. captions: the LM and projectors learn to say what the towers see and hear (SFT on captions,
   which describe cues and never name an emotion).

The result is written in float16 with `build.json`: the settings, the weights' SHA-256, the
seconds each phase took, and a probe of what the frozen towers perceive (a ridge regression of
each cue and a logistic regression of the emotion on their pooled outputs, fitted on the
pretraining clips and scored on held-out in- and out-of-distribution clips; measured, never
trained on).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from r1omni.data import read_manifest
from r1omni.data.synth import WorldConfig, world_is_complete, write_world
from r1omni.data.synth.corpus import world_texts
from r1omni.eval.metrics import uar as emotion_uar
from r1omni.models import OmniPolicy, nano
from r1omni.models.base import WEIGHTS_NAME
from r1omni.models.cache import content_hash
from r1omni.pretrain.perception import CueTargets, PerceptionSettings, decode_all, pooled_features, pretrain_towers
from r1omni.progress import StageTimer
from r1omni.train.config import DataConfig, ModelConfig, RunConfig, SFTSettings, TrainConfig
from r1omni.train.stages import train

BUILD_NAME = "build.json"


@dataclass
class PretrainSettings:
    world_seed: int = 1000
    clips: int = 6000  # pretraining clips (the world's `pretrain` split: in-distribution people)
    probe_clips: int = 700  # held-out clips per probe split (test, ood_test): measured only
    perception: PerceptionSettings = field(default_factory=PerceptionSettings)
    caption_steps: int = 1500
    caption_lr: float = 1e-3
    batch_size: int = 32
    vocab_size: int = 4096
    seed: int = 0


def settings_from_json(data: dict) -> PretrainSettings:
    return PretrainSettings(**{**data, "perception": PerceptionSettings(**data["perception"])})


def probe(policy: OmniPolicy, fit_rows, fit_media, tests: dict[str, tuple]) -> dict:
    """What the towers' pooled outputs hold: R² of a ridge regression per cue and UAR of a logistic
    regression of the emotion, fitted on `fit_rows` and scored on each test split."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    targets = CueTargets(fit_rows)
    fit = pooled_features(policy, fit_media)
    results = {}
    for split, (rows, media) in tests.items():
        features, truth = pooled_features(policy, media), targets.of(rows)
        r2 = {}
        for modality in targets.FIELDS:
            ridge = Ridge(alpha=1.0).fit(fit[modality], targets.values[modality])
            predicted = ridge.predict(features[modality])
            r2.update({name: round(float(r2_score(truth[modality][:, k], predicted[:, k])), 3)
                       for k, name in enumerate(targets.names[modality])})
        uar = {}
        for name, keys in (("face", ["video"]), ("voice", ["audio"]), ("both", ["video", "audio"])):
            classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
            classifier.fit(np.concatenate([fit[k] for k in keys], 1), [r.label for r in fit_rows])
            guess = classifier.predict(np.concatenate([features[k] for k in keys], 1))
            uar[name] = round(emotion_uar([r.label for r in rows], list(guess)), 4)
        results[split] = {"cue_r2": r2, "emotion_uar": uar}
    return results


def caption_config(settings: PretrainSettings, out: Path, world: Path) -> RunConfig:
    """The captioning stage: SFT of the LM on the clips' captions, the towers frozen."""
    batch = settings.batch_size
    config = RunConfig(
        kind="sft", model=ModelConfig(path=str(out / "towers"), feature_cache=str(out / "features")),
        data=DataConfig(train=str(world / "pretrain.jsonl"), prompt="describe"), sft=SFTSettings(target="caption"),
        train=TrainConfig(output_dir=str(out / "captions"), lr=settings.caption_lr, max_steps=settings.caption_steps,
                          scheduler="cosine", warmup_ratio=0.05, batch_size=batch, micro_batch_size=batch,
                          seed=settings.seed, log_every=10))
    config.validate()
    return config


def pretrain(out: str | Path, settings: PretrainSettings | None = None, workers: int = 1,
             say: Callable[[str], None] = print) -> Path:
    """Build the base model under `out` (world, intermediate models, logs); returns `out/base`."""
    settings = settings or PretrainSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timer = StageTimer()  # seconds of each phase, recorded in the build

    world = out / "world"
    sizes = {"pretrain": settings.clips, "test": settings.probe_clips, "ood_test": settings.probe_clips}
    config = WorldConfig(seed=settings.world_seed, sizes=sizes)
    with timer("world"):
        if world_is_complete(world, config):
            say(f"reusing the pretraining world in {world}")
        else:
            say(f"writing the pretraining world ({sum(sizes.values())} clips, seed {settings.world_seed}) to {world}")
            shutil.rmtree(world, ignore_errors=True)
            write_world(config, world, list(sizes), workers=workers)

    with timer("perception"):
        torch.manual_seed(settings.seed)
        policy = nano(world_texts(), vocab_size=settings.vocab_size)
        rows = read_manifest(world / "pretrain.jsonl")
        say(f"perception: the towers learn the cues of {len(rows)} clips ({settings.perception.steps} steps)")
        media = decode_all(policy, rows)  # once: perception trains on these clips and the probe fits on them
        perception = pretrain_towers(policy, rows, media, settings.perception,
                                     progress=lambda step, losses: step % 100 == 0 and say(
                                         f"  step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in losses.items())))

    with timer("probe"):
        say("probing what the towers perceive (held-out clips)")
        tests = {s: (r, decode_all(policy, r)) for s in ("test", "ood_test")
                 for r in [read_manifest(world / f"{s}.jsonl")]}
        probed = probe(policy, rows, media, tests)

    with timer("captions"):
        policy.config.frozen = ["video", "audio"]
        for encoder in policy.encoders().values():
            encoder.requires_grad_(False)
        policy.save_pretrained(out / "towers")
        say(f"captions: the LM learns to say what the frozen towers see and hear ({settings.caption_steps} steps)")
        final = train(caption_config(settings, out, world))
    seconds = timer.totals

    base = out / "base"
    shutil.rmtree(base, ignore_errors=True)
    policy = OmniPolicy.from_pretrained(final, device="cpu", dtype="float16")
    policy.save_pretrained(base)
    build = {"settings": asdict(settings), "weights_sha256": content_hash(base / WEIGHTS_NAME),
             "seconds": {k: round(v, 1) for k, v in seconds.items()}, "perception": perception, "probe": probed,
             "torch": torch.__version__}
    (base / BUILD_NAME).write_text(json.dumps(build, indent=2) + "\n")
    say(f"base model written to {base} ({sum(seconds.values()) / 60:.1f} min)")
    return base
