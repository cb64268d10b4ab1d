"""RAVDESS: labels from filename codes ``MM-VC-EE-II-SS-RR-AA`` under ``Actor_XX/`` folders.

Folds: 6 speaker-independent folds of 4 consecutive actors (1–4, 5–8, …), the common practice
since RAVDESS has no official split.
"""

from __future__ import annotations

from pathlib import Path

from r1omni.data.manifest import ClipRow
from r1omni.data.scan import ScanResult, coded_files
from r1omni.labels import VOCABULARIES

MODALITY = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
CHANNEL = {"01": "speech", "02": "song"}
EMOTION = {f"{i:02d}": label for i, label in enumerate(VOCABULARIES["ravdess"], 1)}
INTENSITY = {"01": "normal", "02": "strong"}
BINARY = {"01", "02"}


def parse_name(stem: str) -> dict | str:
    """The codes of a RAVDESS file name, or the reason it is not one."""
    parts = stem.split("-")
    if len(parts) != 7 or not all(len(p) == 2 and p.isdigit() for p in parts):
        return "name does not follow MM-VC-EE-II-SS-RR-AA"
    modality, channel, emotion, intensity, statement, repetition, actor = parts
    for code, table, what in (
        (modality, MODALITY, "modality"), (channel, CHANNEL, "vocal channel"),
        (emotion, EMOTION, "emotion"), (intensity, INTENSITY, "intensity"),
    ):
        if code not in table:
            return f"unknown {what} code {code!r}"
    if statement not in BINARY or repetition not in BINARY:
        return "statement and repetition codes must be 01 or 02"
    if not 1 <= int(actor) <= 24:
        return f"unknown actor {actor!r} (expected 01-24)"
    return {
        "modality": MODALITY[modality], "vocal_channel": CHANNEL[channel],
        "label": EMOTION[emotion], "intensity": INTENSITY[intensity],
        "statement": statement, "repetition": repetition, "actor": actor,
        "gender": "male" if int(actor) % 2 else "female",
    }


def scan(root: Path) -> ScanResult:
    result = ScanResult()
    for path, codes in coded_files(root, parse_name, result):
        media = {"audio-video": {"video": str(path), "audio": str(path)},
                 "video-only": {"video": str(path)},
                 "audio-only": {"audio": str(path)}}[codes["modality"]]
        actor = codes.pop("actor")
        result.rows.append(ClipRow(
            id=path.stem, label=codes.pop("label"), dataset="ravdess", speaker=actor,
            fold=(int(actor) - 1) // 4 + 1, meta=codes, **media,
        ))
    return result
