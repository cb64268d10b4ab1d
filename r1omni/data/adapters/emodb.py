"""Emo-DB: labels from file names ``SSTTTEV.wav`` (speaker, text, German emotion letter, version).

Folds: leave one speaker out, fold k = the k-th of the 10 speakers.
"""

from __future__ import annotations

import re
from pathlib import Path

from r1omni.data.manifest import ClipRow
from r1omni.data.scan import ScanResult, coded_files, media_fields

EMOTION = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"}
SPEAKER_GENDER = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
                  "12": "male", "13": "female", "14": "female", "15": "male", "16": "female"}
FOLD_OF_SPEAKER = {s: i for i, s in enumerate(SPEAKER_GENDER, 1)}
_NAME = re.compile(r"^(\d\d)([a-z]\d\d)([A-Z])([a-z])$")


def parse_name(stem: str) -> dict | str:
    match = _NAME.match(stem)
    if not match:
        return "name does not follow SSTTTEV (e.g. 03a01Fa)"
    speaker, text, emotion, version = match.groups()
    if speaker not in SPEAKER_GENDER:
        return f"unknown speaker {speaker!r}"
    if emotion not in EMOTION:
        return f"unknown emotion letter {emotion!r} (expected one of {''.join(EMOTION)})"
    return {"speaker": speaker, "label": EMOTION[emotion], "text": text, "version": version,
            "gender": SPEAKER_GENDER[speaker]}


def scan(root: Path) -> ScanResult:
    result = ScanResult()
    for path, codes in coded_files(root, parse_name, result):
        speaker = codes.pop("speaker")
        result.rows.append(ClipRow(
            id=path.stem, label=codes.pop("label"), dataset="emodb", speaker=speaker,
            fold=FOLD_OF_SPEAKER[speaker], meta=codes, **media_fields(path),
        ))
    return result
