"""The synthetic world's emotional cues: facial action units, prosody, and what each emotion
does to them.

Numbers here are the generative model (docs/synthetic_world.md tabulates them). Profiles follow
EMFACS prototypes and the vocal-affect literature, with deliberate overlaps: fear/surprise and
anger/disgust look alike, happy/surprise and sad/neutral sound alike.
"""

from __future__ import annotations

EMOTIONS = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")

# Facial action units (FACS number, what moves), intensities in [0, 1].
ACTION_UNITS = {
    "AU1": "inner brow raise",
    "AU2": "outer brow raise",
    "AU4": "brow lowerer",
    "AU5": "upper lid raise",
    "AU6": "cheek raise",
    "AU9": "nose wrinkle",
    "AU12": "lip corner pull",
    "AU15": "lip corner depress",
    "AU20": "lip stretch",
    "AU24": "lip press",
    "AU26": "jaw drop",
}

# Apex intensity of each AU at full emotional intensity (absent = 0).
FACE_PROFILES: dict[str, dict[str, float]] = {
    "happy": {"AU6": 0.7, "AU12": 0.9, "AU26": 0.25},
    "sad": {"AU1": 0.7, "AU4": 0.4, "AU15": 0.7, "AU24": 0.15},
    "neutral": {},
    "angry": {"AU4": 0.85, "AU5": 0.4, "AU9": 0.25, "AU24": 0.7},
    "surprise": {"AU1": 0.8, "AU2": 0.8, "AU5": 0.8, "AU26": 0.7},
    "disgust": {"AU4": 0.55, "AU9": 0.8, "AU15": 0.4, "AU24": 0.3},
    "fear": {"AU1": 0.8, "AU2": 0.6, "AU4": 0.35, "AU5": 0.8, "AU20": 0.5, "AU26": 0.55},
}
AU_NOISE = 0.2  # sd of per-clip deviation from the scaled profile

# Prosody relative to the speaker's own neutral voice.
PROSODY = {
    "pitch_shift": "mean F0 change, semitones",
    "pitch_range": "F0 range within the utterance, semitones",
    "contour": "F0 change from start to end, semitones",
    "rate": "speaking rate, times the speaker's neutral rate",
    "loudness": "level change, dB",
    "pauses": "fraction of the utterance that is silent",
    "tremor": "F0 and amplitude tremor depth, 0-1",
    "breathiness": "aspiration noise, 0-1",
    "tension": "pressed, bright voice quality, 0-1",
}
VOICE_PROFILES: dict[str, dict[str, float]] = {
    "neutral": dict(pitch_shift=0, pitch_range=4, contour=-2, rate=1.0, loudness=0, pauses=0.10,
                    tremor=0.0, breathiness=0.2, tension=0.2),
    "happy": dict(pitch_shift=4, pitch_range=9, contour=0, rate=1.1, loudness=4, pauses=0.08,
                  tremor=0.0, breathiness=0.2, tension=0.3),
    "surprise": dict(pitch_shift=5, pitch_range=10, contour=3, rate=1.05, loudness=4, pauses=0.08,
                     tremor=0.0, breathiness=0.25, tension=0.35),
    "angry": dict(pitch_shift=3, pitch_range=7, contour=-3, rate=1.15, loudness=8, pauses=0.06,
                  tremor=0.0, breathiness=0.1, tension=0.85),
    "fear": dict(pitch_shift=6, pitch_range=6, contour=1, rate=1.25, loudness=2, pauses=0.12,
                 tremor=0.7, breathiness=0.4, tension=0.5),
    "sad": dict(pitch_shift=-2, pitch_range=2.5, contour=-3, rate=0.8, loudness=-5, pauses=0.2,
                tremor=0.1, breathiness=0.6, tension=0.1),
    "disgust": dict(pitch_shift=-1, pitch_range=5, contour=-4, rate=0.85, loudness=1, pauses=0.15,
                    tremor=0.0, breathiness=0.3, tension=0.55),
}
# sd of per-clip deviation, and the range each value is clipped to.
# (Set so that a classifier on the true cue values reaches about 65% from either modality alone
# and about 85% from both: see docs/synthetic_world.md.)
PROSODY_NOISE = dict(pitch_shift=2.7, pitch_range=2.7, contour=2.7, rate=0.13, loudness=3.6,
                     pauses=0.07, tremor=0.18, breathiness=0.18, tension=0.18)
PROSODY_LIMITS = dict(pitch_shift=(-6, 10), pitch_range=(1, 14), contour=(-7, 6), rate=(0.6, 1.5),
                      loudness=(-10, 12), pauses=(0.0, 0.35), tremor=(0, 1), breathiness=(0, 1),
                      tension=(0, 1))

# Masking displays for conflict clips: the face shows the mask, the voice the felt emotion.
# A social smile pulls the lip corners without raising the cheeks (no Duchenne marker).
MASKS: dict[str, dict[str, float]] = {
    "angry": {"AU12": 0.6, "AU6": 0.1},
    "sad": {"AU12": 0.5, "AU6": 0.1},
    "fear": {},
}


# ----------------------------------------------------------------------------- cue concepts
# What a describable cue is, when it is present in a clip, and the words for it. Captions and
# rationales are written from this table; r1omni.claims recognises its phrases (CUE_PATTERNS).

FACE_CONCEPTS: dict[str, tuple[str, ...]] = {
    "brow_raise": ("raised eyebrows", "brows lifted high", "eyebrows pulled up", "arched brows"),
    "inner_brow_raise": ("inner brows drawn up", "brows slanting up in the middle",
                         "the inner ends of the brows lifted"),
    "brow_lower": ("furrowed brows", "brows drawn together", "lowered eyebrows", "a frown between the brows"),
    "eyes_wide": ("wide-open eyes", "eyes opened wide", "staring eyes", "upper lids raised"),
    "cheek_raise": ("raised cheeks", "cheeks pushed up", "crinkles around the eyes"),
    "nose_wrinkle": ("a wrinkled nose", "a scrunched nose", "wrinkles across the nose"),
    "smile": ("a smile", "lip corners pulled up", "upturned mouth corners", "smiling"),
    "mouth_down": ("downturned lip corners", "mouth corners pulled down", "a drooping mouth"),
    "lip_stretch": ("lips stretched sideways", "a stretched mouth", "lips pulled wide"),
    "lip_press": ("pressed lips", "lips pressed together", "tight lips"),
    "jaw_drop": ("an open mouth", "a dropped jaw", "the mouth falling open"),
    "still_face": ("a relaxed face", "an expressionless face", "little facial movement"),
}
VOICE_CONCEPTS: dict[str, tuple[str, ...]] = {
    "pitch_high": ("a high-pitched voice", "raised pitch", "a voice higher than usual"),
    "pitch_low": ("a low-pitched voice", "lowered pitch", "a deep, dropped voice"),
    "pitch_varied": ("lively intonation", "wide pitch swings", "an animated melody"),
    "monotone": ("flat intonation", "a monotone delivery", "little pitch movement"),
    "rising": ("rising intonation", "pitch rising at the end", "a question-like rise"),
    "falling": ("falling intonation", "pitch dropping at the end", "a sinking melody"),
    "loud": ("a loud voice", "raised volume", "forceful speech"),
    "soft": ("a quiet voice", "low volume", "subdued speech"),
    "fast": ("fast speech", "a rapid speaking rate", "hurried delivery"),
    "slow": ("slow speech", "a sluggish pace", "drawn-out delivery"),
    "pauses": ("long pauses", "hesitant pauses", "halting speech"),
    "tremor": ("a trembling voice", "a shaky voice", "a quavering voice"),
    "breathy": ("a breathy voice", "an airy, weak voice", "a sighing quality"),
    "tense": ("a tense voice", "a harsh, pressed voice", "a strained voice"),
    "even_voice": ("an even voice", "an ordinary speaking voice", "a steady, unremarkable voice"),
}

PRESENT = 0.35  # an AU at or above this apex intensity is visible


def face_concepts(aus: dict[str, float]) -> list[str]:
    """The describable face cues of a clip's AU apex intensities."""
    on = {au for au, v in aus.items() if v >= PRESENT}
    found = []
    if "AU2" in on:
        found.append("brow_raise")
    elif "AU1" in on:
        found.append("inner_brow_raise")
    rules = (("AU4", "brow_lower"), ("AU5", "eyes_wide"), ("AU6", "cheek_raise"), ("AU9", "nose_wrinkle"),
             ("AU12", "smile"), ("AU15", "mouth_down"), ("AU20", "lip_stretch"), ("AU24", "lip_press"),
             ("AU26", "jaw_drop"))
    found += [concept for au, concept in rules if au in on]
    return found or ["still_face"]


def voice_concepts(prosody: dict[str, float]) -> list[str]:
    """The describable voice cues of a clip's prosody values."""
    p = prosody
    rules = (
        ("pitch_high", p["pitch_shift"] >= 2.5), ("pitch_low", p["pitch_shift"] <= -1.5),
        ("pitch_varied", p["pitch_range"] >= 7), ("monotone", p["pitch_range"] <= 3),
        ("rising", p["contour"] >= 1.5), ("falling", p["contour"] <= -3.5),
        ("loud", p["loudness"] >= 4), ("soft", p["loudness"] <= -3),
        ("fast", p["rate"] >= 1.12), ("slow", p["rate"] <= 0.88),
        ("pauses", p["pauses"] >= 0.17), ("tremor", p["tremor"] >= 0.35),
        ("breathy", p["breathiness"] >= 0.45), ("tense", p["tension"] >= 0.6),
    )
    return [concept for concept, on in rules if on] or ["even_voice"]
