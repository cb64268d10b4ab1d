"""Who appears in the world: face identities and speakers, drawn from a domain's style.

The in-distribution and out-of-distribution domains share cue semantics but differ in
rendering style (proportions, colours, lighting, framing), recording channel and class priors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class DomainStyle:
    name: str
    priors: dict[str, float]  # class priors
    skin_tones: tuple  # RGB palette
    hair_colours: tuple
    backgrounds: tuple  # pairs of gradient end colours
    face_ratio: tuple[float, float]  # face height / width
    eye_scale: tuple[float, float]
    face_scale: tuple[float, float]  # face half-width as a fraction of the frame
    offset: float  # max face-centre offset, fraction of the frame
    light: tuple[float, float]  # shading strength range
    tint: tuple[float, float, float]  # colour cast of the camera
    sensor_noise: float  # sd in 0-255 units
    # recording channel
    reverb_rt60: tuple[float, float]  # seconds, 0 = dry
    band: tuple[float, float] | None  # band-pass in Hz, None = full band
    snr_db: tuple[float, float]
    f0_male: tuple[float, float]
    f0_female: tuple[float, float]

    def to_json(self) -> dict:
        return asdict(self)


IN_DOMAIN = DomainStyle(
    name="id",
    priors={"happy": 0.20, "sad": 0.16, "neutral": 0.18, "angry": 0.16, "surprise": 0.12,
            "disgust": 0.08, "fear": 0.10},
    skin_tones=((241, 194, 167), (224, 172, 138), (198, 134, 96), (161, 102, 70), (110, 70, 48), (236, 188, 150)),
    hair_colours=((40, 30, 25), (90, 60, 35), (150, 110, 60), (200, 170, 110), (120, 120, 120), (20, 20, 20)),
    backgrounds=(((70, 90, 120), (150, 170, 190)), ((120, 100, 80), (200, 185, 160)), ((60, 80, 60), (140, 170, 140)),
                 ((90, 90, 100), (190, 190, 200))),
    face_ratio=(1.2, 1.4), eye_scale=(0.9, 1.1), face_scale=(0.27, 0.33), offset=0.04,
    light=(0.1, 0.25), tint=(1.0, 1.0, 1.0), sensor_noise=3.0,
    reverb_rt60=(0.0, 0.15), band=None, snr_db=(30, 40),
    f0_male=(95, 140), f0_female=(175, 240),
)

OUT_OF_DOMAIN = DomainStyle(
    name="ood",
    priors={"happy": 0.15, "sad": 0.15, "neutral": 0.07, "angry": 0.15, "surprise": 0.16,
            "disgust": 0.16, "fear": 0.16},
    skin_tones=((250, 215, 190), (205, 150, 120), (140, 95, 75), (95, 60, 45), (230, 200, 175)),
    hair_colours=((60, 40, 30), (170, 90, 40), (230, 210, 160), (30, 30, 40), (100, 70, 50)),
    backgrounds=(((200, 200, 190), (240, 240, 230)), ((40, 40, 50), (90, 90, 110)), ((160, 120, 140), (220, 190, 200))),
    face_ratio=(1.05, 1.2), eye_scale=(1.1, 1.35), face_scale=(0.22, 0.28), offset=0.09,
    light=(0.25, 0.4), tint=(0.92, 0.97, 1.08), sensor_noise=6.0,
    reverb_rt60=(0.25, 0.5), band=(300.0, 3400.0), snr_db=(15, 25),
    f0_male=(85, 130), f0_female=(165, 225),
)

DOMAINS = {style.name: style for style in (IN_DOMAIN, OUT_OF_DOMAIN)}


@dataclass(frozen=True)
class Person:
    """One identity: a face and the voice that goes with it."""

    id: str
    gender: str
    # face
    skin: tuple
    hair: tuple
    hair_style: int  # 0 bald, 1 short, 2 long
    face_ratio: float
    eye_spacing: float
    eye_scale: float
    brow_thickness: float
    glasses: bool
    iris: tuple
    lips: tuple
    shirt: tuple
    # voice
    f0: float  # Hz
    vocal_tract: float  # formant scale: >1 longer tract, lower formants
    syllable_rate: float  # syllables per second when neutral
    jitter: float
    shimmer: float
    breath: float


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _vary(rng: np.random.Generator, colour, spread: float = 12.0) -> tuple:
    return tuple(int(np.clip(c + rng.normal(0, spread), 0, 255)) for c in colour)


def make_person(person_id: str, style: DomainStyle, rng: np.random.Generator) -> Person:
    gender = "female" if rng.random() < 0.5 else "male"
    skin = _vary(rng, _pick(rng, style.skin_tones), 8)
    return Person(
        id=person_id,
        gender=gender,
        skin=skin,
        hair=_vary(rng, _pick(rng, style.hair_colours)),
        hair_style=int(rng.choice(3, p=[0.1, 0.6, 0.3] if gender == "male" else [0.02, 0.33, 0.65])),
        face_ratio=float(rng.uniform(*style.face_ratio)),
        eye_spacing=float(rng.uniform(0.36, 0.46)),
        eye_scale=float(rng.uniform(*style.eye_scale)),
        brow_thickness=float(rng.uniform(0.05, 0.09)),
        glasses=bool(rng.random() < 0.25),
        iris=_vary(rng, _pick(rng, ((60, 40, 30), (70, 110, 140), (80, 120, 80), (40, 30, 30))), 10),
        lips=tuple(int(c * 0.8) for c in skin[:1]) + tuple(int(c * 0.6) for c in skin[1:]),
        shirt=tuple(int(c) for c in rng.integers(30, 220, 3)),
        f0=float(rng.uniform(*(style.f0_female if gender == "female" else style.f0_male))),
        vocal_tract=float(rng.uniform(0.92, 1.08) * (1.0 if gender == "female" else 1.12)),
        syllable_rate=float(rng.uniform(3.8, 5.0)),
        jitter=float(rng.uniform(0.004, 0.012)),
        shimmer=float(rng.uniform(0.02, 0.06)),
        breath=float(rng.uniform(0.0, 0.15)),
    )


def make_people(prefix: str, count: int, style: DomainStyle, seed: int) -> list[Person]:
    """`count` identities, deterministic from `seed` and `prefix` (the pool's name)."""
    rng = np.random.default_rng([seed, *prefix.encode()])
    return [make_person(f"{prefix}{i:03d}", style, rng) for i in range(count)]
