"""Captions (cues, no emotion named) and EMER-style rationales (cues reasoned to an emotion).

Wording varies by template and synonym so that a model cannot learn one sentence shape; every
cue phrase comes from the world's concept table, whose phrases r1omni.claims reads back.
"""

from __future__ import annotations

import numpy as np

from r1omni.data.synth.cues import FACE_CONCEPTS, VOICE_CONCEPTS

EMOTION_WORDS = {
    "happy": ("happy", "happiness", "joy"),
    "sad": ("sad", "sadness", "sorrow"),
    "neutral": ("neutral", "a neutral state", "no particular emotion, a neutral state"),
    "angry": ("angry", "anger", "irritation that amounts to anger"),
    "surprise": ("surprise", "surprised", "astonishment, that is surprise"),
    "disgust": ("disgust", "disgusted", "revulsion, that is disgust"),
    "fear": ("fear", "fearful", "fright, that is fear"),
}
# What a masking face displays, for the conflict sentence: its smile, its stillness, or (when
# the face's own cues are neither) words that claim no cue.
MASK_WORDS = {"smile": ("polite smile", "social smile", "forced smile"),
              "still_face": ("composed face", "controlled, blank face", "face held still"),
              "other": ("guarded look", "held look", "controlled look")}

PEOPLE = ("the person", "the speaker", "the character", "the man or woman on screen")
FACE_OPENERS = (
    "In the video, {who} shows {cues}.",
    "Looking at the face, we see {cues}.",
    "Visually, {who} has {cues}.",
    "The face displays {cues}.",
    "On screen, {cues} can be seen.",
    "{Who}'s expression features {cues}.",
)
VOICE_OPENERS = (
    "The audio reveals {cues}.",
    "In the soundtrack, {who} speaks with {cues}.",
    "Listening to the voice, there is {cues}.",
    "Acoustically, the speech has {cues}.",
    "{Who} talks with {cues}.",
    "The recording carries {cues}.",
)
CONFLICT = (
    "Although the face shows a {mask}, the voice tells a different story, so the expression looks like a mask.",
    "The {mask} does not match the voice; the voice is the more honest signal here.",
    "There is a mismatch: a {mask} on the face, but the vocal cues contradict it.",
    "The face is held in a {mask}, yet the way {who} speaks betrays the real feeling.",
)
CONCLUSIONS = (
    "Taken together, these cues point to {emotion}.",
    "All of this suggests that {who} feels {emotion}.",
    "Combining what is seen and heard, the most likely emotion is {emotion}.",
    "Therefore the emotion conveyed is {emotion}.",
    "These signals are most consistent with {emotion}.",
    "So {who} is best described as feeling {emotion}.",
)
CAPTION_FACE = (
    "A person with {cues}.",
    "Close-up of a face: {cues}.",
    "The face shows {cues}.",
    "{cues_cap} are visible on the face.",
)
CAPTION_VOICE = (
    "The voice has {cues}.",
    "Speech with {cues}.",
    "One hears {cues}.",
)


def _choose(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _join(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _phrases(concepts: list[str], table: dict, rng: np.random.Generator) -> list[str]:
    return [_choose(rng, table[c]) for c in concepts]


def _fill(template: str, rng: np.random.Generator, **values) -> str:
    who = _choose(rng, PEOPLE)
    return template.format(who=who, Who=who[0].upper() + who[1:], **values)


def caption(face: list[str], voice: list[str], rng: np.random.Generator) -> str:
    """What is seen and heard, without naming an emotion. Empty lists leave a modality out."""
    sentences = []
    if face:
        cues = _join(_phrases(face, FACE_CONCEPTS, rng))
        sentences.append(_choose(rng, CAPTION_FACE).format(cues=cues, cues_cap=cues[0].upper() + cues[1:]))
    if voice:
        sentences.append(_choose(rng, CAPTION_VOICE).format(cues=_join(_phrases(voice, VOICE_CONCEPTS, rng))))
    if rng.random() < 0.5:
        sentences.reverse()
    return " ".join(sentences)


def rationale(
    face: list[str], voice: list[str], emotion: str, conflict: bool, rng: np.random.Generator
) -> str:
    """EMER-style reasoning from the cues (and any conflict between them) to `emotion`."""
    parts = []
    if face:
        parts.append(_fill(_choose(rng, FACE_OPENERS), rng, cues=_join(_phrases(face, FACE_CONCEPTS, rng))))
    if voice:
        parts.append(_fill(_choose(rng, VOICE_OPENERS), rng, cues=_join(_phrases(voice, VOICE_CONCEPTS, rng))))
    if face and voice and not conflict and rng.random() < 0.5:
        parts.reverse()
    if conflict and face and voice:
        mask = next((m for m in ("smile", "still_face") if m in face), "other")
        parts.append(_fill(_choose(rng, CONFLICT), rng, mask=_choose(rng, MASK_WORDS[mask])))
    parts.append(_fill(_choose(rng, CONCLUSIONS), rng, emotion=_choose(rng, EMOTION_WORDS[emotion])))
    return " ".join(parts)
