"""CREMA-D: labels from file names ``ActorID_Sentence_Emotion_Level`` (AudioWAV, VideoFlash …).

Files of one clip (a .flv video, a .wav and an .mp3 of its sound) become one row: the video
and the best audio file. Folds: 5 speaker-independent folds of consecutive actor IDs
(1001–1091), since CREMA-D has no official split. The 4 clips known to be broken are skipped.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from r1omni.data.manifest import ClipRow
from r1omni.data.scan import ScanResult, coded_files, is_video

EMOTION = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVEL = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SENTENCES = {"IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI"}
BROKEN = {"1076_MTI_NEU_XX", "1076_MTI_SAD_XX", "1064_TIE_SAD_XX", "1064_IEO_DIS_MD"}
ACTORS = range(1001, 1092)
FOLD_OF_ACTOR = {
    actor: fold for fold, group in enumerate(np.array_split(np.array(ACTORS), 5), 1) for actor in group
}
AUDIO_PREFERENCE = (".wav", ".flac", ".mp3")  # lossless first
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def parse_name(stem: str) -> dict | str:
    match = _NAME.match(stem)
    if not match:
        return "name does not follow ActorID_Sentence_Emotion_Level"
    actor, sentence, emotion, level = match.groups()
    if int(actor) not in FOLD_OF_ACTOR:
        return f"unknown actor {actor!r} (expected 1001-1091)"
    if sentence not in SENTENCES:
        return f"unknown sentence code {sentence!r}"
    if emotion not in EMOTION:
        return f"unknown emotion code {emotion!r}"
    if level not in LEVEL:
        return f"unknown level code {level!r}"
    return {"actor": actor, "sentence": sentence, "label": EMOTION[emotion], "level": LEVEL[level]}


def _audio_rank(path: Path) -> int:
    suffix = path.suffix.lower()
    return AUDIO_PREFERENCE.index(suffix) if suffix in AUDIO_PREFERENCE else len(AUDIO_PREFERENCE)


def scan(root: Path) -> ScanResult:
    result = ScanResult()
    clips: dict[str, list[Path]] = {}
    for path, _ in coded_files(root, parse_name, result):
        if path.stem in BROKEN:
            result.skip(path, "known broken clip in the CREMA-D release")
        else:
            clips.setdefault(path.stem, []).append(path)
    broken = sorted({Path(p).stem for p, why in result.skipped if why.startswith("known broken")})
    if broken:
        warnings.warn(f"CREMA-D: skipped known broken clips {broken}", stacklevel=2)
    for stem, paths in clips.items():
        codes = parse_name(stem)
        videos = [p for p in paths if is_video(p)]
        audios = sorted((p for p in paths if not is_video(p)), key=_audio_rank)
        media = {}
        if videos:
            media["video"] = str(videos[0])
        if audios or videos:
            media["audio"] = str(audios[0] if audios else videos[0])
        actor = codes.pop("actor")
        result.rows.append(ClipRow(
            id=stem, label=codes.pop("label"), dataset="cremad", speaker=actor,
            fold=FOLD_OF_ACTOR[int(actor)], meta=codes, **media,
        ))
    return result
