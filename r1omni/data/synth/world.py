"""The synthetic audio-visual emotion world: clips, splits, and writing them to disk.

Every clip is a pure function of (world seed, split, index): the same seed gives the same
clips in memory and byte-identical manifests on disk, in any order and in parallel.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

import r1omni.data.synth.text as text
from r1omni.data.manifest import ClipRow, write_manifest
from r1omni.data.synth.cues import (
    AU_NOISE,
    EMOTIONS,
    FACE_PROFILES,
    MASKS,
    PROSODY_LIMITS,
    PROSODY_NOISE,
    VOICE_PROFILES,
    face_concepts,
    voice_concepts,
)
from r1omni.data.synth.face import AU_ORDER, Scene, render_faces
from r1omni.data.synth.people import DOMAINS, DomainStyle, Person, make_people
from r1omni.data.synth.voice import SAMPLE_RATE, apply_channel, synthesize_voice
from r1omni.errors import R1OmniError

SPLITS = ("pretrain", "coldstart", "rl", "val", "test", "ood_test")
# Which identity pool and domain each split draws from: test and ood_test meet unseen people.
SPLIT_POOL = {"pretrain": "train", "coldstart": "train", "rl": "train", "val": "val", "test": "test",
              "ood_test": "ood"}
POOL_DOMAIN = {"train": "id", "val": "id", "test": "id", "ood": "ood"}
SUBTLE = 0.35  # an intensity below this leaves a modality's cues faint
DATASET = "synth"


@dataclass
class WorldConfig:
    seed: int = 0
    sizes: dict[str, int] = field(default_factory=lambda: {
        "pretrain": 2000, "coldstart": 580, "rl": 4000, "val": 200, "test": 700, "ood_test": 700})
    identities: dict[str, int] = field(default_factory=lambda: {"train": 240, "val": 40, "test": 80, "ood": 80})
    num_frames: int = 8  # frames per clip in memory (segment midpoints)
    size: int = 112  # frame side in pixels
    fps: int = 10  # frame rate of written videos
    duration: tuple[float, float] = (2.0, 5.0)  # seconds
    conflict_fraction: float = 0.15
    intensity: tuple[float, float] = (0.25, 1.0)

    def validate(self) -> None:
        unknown = sorted(set(self.sizes) - set(SPLITS))
        if unknown:
            raise R1OmniError(f"unknown synthetic splits {unknown}; splits are {', '.join(SPLITS)}")
        if any(not isinstance(v, int) or v < 0 for v in self.sizes.values()):
            raise R1OmniError(f"split sizes must be whole numbers >= 0, got {self.sizes}")
        if not 0.0 <= self.conflict_fraction <= 0.5:
            raise R1OmniError(f"conflict_fraction must be within [0, 0.5], got {self.conflict_fraction}")
        if self.size < 112 or self.num_frames < 1 or self.fps < 1:
            raise R1OmniError("frames need size >= 112, num_frames >= 1 and fps >= 1")
        if not 0.5 <= self.duration[0] <= self.duration[1]:
            raise R1OmniError(f"duration must be an increasing pair of seconds >= 0.5, got {self.duration}")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Clip:
    """One clip's recipe: everything needed to render its frames and audio, and its row."""

    row: ClipRow
    person: Person
    scene: Scene
    frame_count: int  # frames in the written video
    aus: dict[str, float]  # apex intensities
    prosody: dict[str, float]
    timing: dict  # AU envelope and head motion
    seed: int


@dataclass
class Sample:
    """A clip in memory: what a trainer reads without touching disk."""

    frames: np.ndarray | None  # [N, S, S, 3] uint8
    audio: np.ndarray | None  # [T] float32, 16 kHz
    row: ClipRow


def _clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(split), index])


class SynthWorld:
    """Clips of the synthetic world by split; see docs/synthetic_world.md."""

    def __init__(self, config: WorldConfig | None = None):
        self.config = config or WorldConfig()
        self.config.validate()
        self._pools: dict[str, list[Person]] = {}

    # ------------------------------------------------------------------ recipes

    def people(self, pool: str) -> list[Person]:
        if pool not in self._pools:
            style = DOMAINS[POOL_DOMAIN[pool]]
            self._pools[pool] = make_people(f"{pool}_", self.config.identities[pool], style, self.config.seed)
        return self._pools[pool]

    def clip(self, split: str, index: int) -> Clip:
        """The recipe of clip `index` of `split` (cheap: nothing is rendered)."""
        if split not in SPLITS:
            raise R1OmniError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
        cfg = self.config
        rng = _clip_rng(cfg.seed, split, index)
        pool = SPLIT_POOL[split]
        style = DOMAINS[POOL_DOMAIN[pool]]
        people = self.people(pool)
        person = people[int(rng.integers(len(people)))]
        label = str(rng.choice(EMOTIONS, p=[style.priors[e] for e in EMOTIONS]))

        conflict = label in MASKS and rng.random() < self._conflict_rate(style)
        face_intensity, voice_intensity = rng.uniform(*cfg.intensity, 2)
        if conflict:  # the voice must carry the felt emotion for the clip to be resolvable
            voice_intensity = max(voice_intensity, rng.uniform(0.55, 1.0))
        shown = MASKS[label] if conflict else FACE_PROFILES[label]
        aus = {}
        for au in AU_ORDER:
            base = shown.get(au, 0.0) * (1.0 if conflict else face_intensity)
            aus[au] = round(float(np.clip(base + rng.normal(0, AU_NOISE) + abs(rng.normal(0, 0.04)), 0, 1)), 4)
        neutral, target = VOICE_PROFILES["neutral"], VOICE_PROFILES[label]
        prosody = {}
        for name, limits in PROSODY_LIMITS.items():
            value = neutral[name] + voice_intensity * (target[name] - neutral[name])
            prosody[name] = round(float(np.clip(value + rng.normal(0, PROSODY_NOISE[name]), *limits)), 4)

        if conflict:
            carrier = "voice"
        elif face_intensity < SUBTLE <= voice_intensity:
            carrier = "voice"
        elif voice_intensity < SUBTLE <= face_intensity:
            carrier = "face"
        else:
            carrier = "both"
        face_cues, voice_cues = face_concepts(aus), voice_concepts(prosody)
        frame_count = int(round(rng.uniform(*cfg.duration) * cfg.fps))
        cues = {
            "aus": aus, "prosody": prosody, "face_intensity": round(float(face_intensity), 4),
            "voice_intensity": round(float(voice_intensity), 4), "label_modality": carrier,
            "conflict": bool(conflict), "face_display": "masked" if conflict else label,
            "face_cues": face_cues, "voice_cues": voice_cues,
        }
        clip_id = f"{split}_{index:06d}"
        row = ClipRow(
            id=clip_id, label=label, dataset=DATASET, video=f"clips/{split}/{clip_id}.mp4",
            audio=f"clips/{split}/{clip_id}.mp4", speaker=person.id, split=split, domain=style.name,
            caption=text.caption(face_cues, voice_cues, rng),
            rationale=text.rationale(face_cues, voice_cues, label, conflict, rng),
            cues=cues, meta={"duration": frame_count / cfg.fps, "gender": person.gender},
        )
        return Clip(row, person, self._scene(style, rng), frame_count, aus, prosody, self._timing(rng, frame_count),
                    seed=int(rng.integers(2**31)))

    def _conflict_rate(self, style: DomainStyle) -> float:
        """Chance that a maskable label becomes a conflict clip, so that the overall fraction of
        conflict clips is `conflict_fraction`."""
        maskable = sum(style.priors[e] for e in MASKS)
        return min(1.0, self.config.conflict_fraction / maskable)

    @staticmethod
    def _scene(style: DomainStyle, rng: np.random.Generator) -> Scene:
        background = style.backgrounds[int(rng.integers(len(style.backgrounds)))]
        return Scene(
            background=background,
            centre=(0.5 + rng.uniform(-style.offset, style.offset), 0.47 + rng.uniform(-style.offset, style.offset)),
            scale=float(rng.uniform(*style.face_scale)),
            light=float(rng.uniform(*style.light)),
            light_angle=float(rng.uniform(0, 2 * np.pi)),
            tint=style.tint,
            noise=style.sensor_noise,
        )

    @staticmethod
    def _timing(rng: np.random.Generator, frame_count: int) -> dict:
        """Onset/apex/offset of the expression, blinks and head motion, as fractions of the clip."""
        onset = rng.uniform(0.0, 0.2)
        apex = onset + rng.uniform(0.1, 0.25)
        offset = rng.uniform(0.75, 1.1)
        return {
            "onset": onset, "apex": apex, "offset": offset, "release": offset + rng.uniform(0.1, 0.3),
            "blinks": sorted(rng.uniform(0, 1, int(rng.integers(0, 3))).tolist()),
            "pose": rng.normal(0, [0.15, 0.08, 0.06]).tolist(),  # yaw, pitch, roll
            "sway": rng.normal(0, [0.08, 0.04, 0.03]).tolist(),
            "sway_hz": float(rng.uniform(0.2, 0.6)),
            "phase": float(rng.uniform(0, 2 * np.pi)),
        }

    # ------------------------------------------------------------------ rendering

    def midpoint_frames(self, clip: Clip) -> np.ndarray:
        """Indices of the written video's frames that `r1omni.media.read_frames` samples."""
        n, count = self.config.num_frames, clip.frame_count
        return np.array([((2 * i + 1) * count) // (2 * n) for i in range(n)])

    def render_frames(self, clip: Clip, frame_indices: np.ndarray) -> np.ndarray:
        """Frames ``[len(frame_indices), S, S, 3]`` uint8; frame k shows time k / fps."""
        timing = clip.timing
        t = (np.asarray(frame_indices, np.float32) + 0.5) / clip.frame_count  # fraction of the clip
        envelope = np.clip((t - timing["onset"]) / (timing["apex"] - timing["onset"]), 0, 1)
        envelope *= np.clip(1 - (t - timing["offset"]) / (timing["release"] - timing["offset"]), 0, 1)
        envelope = envelope * envelope * (3 - 2 * envelope)  # smooth onset and offset
        apex = np.array([clip.aus[au] for au in AU_ORDER], np.float32)
        aus = 0.05 + envelope[:, None] * (apex - 0.05)[None, :]  # [N, 11]
        aus = np.minimum(aus, apex[None, :])
        seconds = t * clip.frame_count / self.config.fps
        pose = np.asarray(timing["pose"], np.float32) + np.asarray(timing["sway"], np.float32) * np.sin(
            2 * np.pi * timing["sway_hz"] * seconds[:, None] + timing["phase"])
        openness = np.ones_like(t)
        duration = clip.frame_count / self.config.fps
        for blink in timing["blinks"]:
            openness *= 1.0 - np.exp(-(((t - blink) * duration / 0.07) ** 2))
        noise_seeds = [clip.seed * 1000 + int(k) for k in frame_indices]
        return render_faces(clip.person, clip.scene, aus, pose, openness, self.config.size, noise_seeds)

    def render_audio(self, clip: Clip) -> np.ndarray:
        """The clip's voice through its domain's recording channel, float32 at 16 kHz."""
        rng = np.random.default_rng(clip.seed)
        style = DOMAINS[clip.row.domain]
        voice = synthesize_voice(clip.prosody, clip.person, clip.frame_count / self.config.fps, rng)
        return apply_channel(voice, rng.uniform(*style.reverb_rt60), style.band, rng.uniform(*style.snr_db), rng)

    def sample(self, split: str, index: int, modalities=("video", "audio")) -> Sample:
        clip = self.clip(split, index)
        frames = self.render_frames(clip, self.midpoint_frames(clip)) if "video" in modalities else None
        audio = self.render_audio(clip) if "audio" in modalities else None
        return Sample(frames, audio, ablate(clip.row, modalities))

    def samples(self, split: str, modalities=("video", "audio"), start: int = 0, stop: int | None = None
                ) -> Iterator[Sample]:
        """Samples of `split` in memory, without touching disk."""
        stop = self.config.sizes.get(split, 0) if stop is None else stop
        for index in range(start, stop):
            yield self.sample(split, index, modalities)

    def rows(self, split: str) -> list[ClipRow]:
        return [self.clip(split, i).row for i in range(self.config.sizes.get(split, 0))]


def ablate(row: ClipRow, modalities) -> ClipRow:
    """A copy of `row` keeping only the given modalities (the modality-ablation variants)."""
    keep = set(modalities)
    if not keep or not keep <= {"video", "audio"}:
        raise R1OmniError(f"modalities must be a non-empty subset of video, audio; got {sorted(keep)}")
    data = row.to_json()
    for modality in ("video", "audio"):
        if modality not in keep:
            data.pop(modality, None)
    return ClipRow(**data)


def write_world(config: WorldConfig, out: str | Path, splits=SPLITS, ablations: bool = False,
                workers: int = 1, progress=None) -> dict[str, Path]:
    """Write mp4 clips and one manifest per split under `out`, plus ``world.json``.

    Clips are rendered in `workers` processes; `progress(split, done, total)` is called as they
    finish. Manifests list clips in index order whatever the finishing order. Returns the
    manifest paths by split.
    """
    config.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifests = {}
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for split in splits:
            total = config.sizes.get(split, 0)
            if pool is None:
                rows = []
                for index in range(total):
                    rows.append(_write_clip(config, out, split, index))
                    if progress is not None:
                        progress(split, index + 1, total)
            else:
                futures = {pool.submit(_write_clip, config, out, split, i): i for i in range(total)}
                rows = [None] * total
                for done, future in enumerate(as_completed(futures), 1):
                    rows[futures[future]] = future.result()
                    if progress is not None:
                        progress(split, done, total)
            manifests[split] = write_manifest(rows, out / f"{split}.jsonl")
            if ablations:
                for modality in ("video", "audio"):
                    write_manifest([ablate(r, (modality,)) for r in rows], out / f"{split}.{modality}_only.jsonl")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    description = {
        "config": config.to_json(),
        "domains": {name: style.to_json() for name, style in DOMAINS.items()},
        "face_profiles": FACE_PROFILES, "voice_profiles": VOICE_PROFILES, "masks": MASKS,
        "au_noise": AU_NOISE, "prosody_noise": PROSODY_NOISE,
    }
    (out / "world.json").write_text(json.dumps(description, indent=2) + "\n")
    return manifests


def world_is_complete(out: str | Path, config: WorldConfig) -> bool:
    """Whether `out` holds a complete world written with `config`, so a rerun can reuse it."""
    out = Path(out)
    try:
        written = json.loads((out / "world.json").read_text())["config"]
    except (OSError, ValueError, KeyError):
        return False
    return written == json.loads(json.dumps(config.to_json())) and all(
        (out / f"{split}.jsonl").is_file() for split in config.sizes if config.sizes[split])


@lru_cache(maxsize=4)
def _world(config_json: str) -> SynthWorld:
    """One world per process and config, so identity pools are built once."""
    data = json.loads(config_json)
    data["duration"] = tuple(data["duration"])
    data["intensity"] = tuple(data["intensity"])
    return SynthWorld(WorldConfig(**data))


def _write_clip(config: WorldConfig, out: Path, split: str, index: int) -> ClipRow:
    """Render clip `index` of `split` at the full frame rate and write it as H.264 + AAC."""
    from r1omni.media.encode import write_video

    world = _world(json.dumps(config.to_json(), sort_keys=True))
    clip = world.clip(split, index)
    frames = world.render_frames(clip, np.arange(clip.frame_count))
    write_video(out / clip.row.video, frames, fps=config.fps, audio=world.render_audio(clip), sample_rate=SAMPLE_RATE)
    return clip.row
