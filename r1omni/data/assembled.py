"""Talking-face clips assembled, not recorded: a CK+ face sequence shown while an Emo-DB speaker
says a sentence with the same emotion, written as RAVDESS lays out its audio-visual files
(``Actor_XX/01-01-EE-II-SS-RR-XX.mp4``) so that ``r1omni data prepare --dataset ravdess`` reads
them. No real talking-face video is available here; these test the whole path (face search,
video and audio in one file, `--ablate`) on real faces and real voices. The face and the voice
belong to different people and were recorded apart: a model's score on them says how it combines
two real signals, not how it does on recorded audio-visual speech.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import product
from pathlib import Path

import numpy as np
from PIL import Image

from r1omni.data.manifest import ClipRow
from r1omni.media import read_audio, write_video

# RAVDESS emotion codes of the emotions CK+ and Emo-DB share.
RAVDESS_CODE = {"happy": "03", "sad": "04", "angry": "05", "fear": "06", "disgust": "07"}
FRAME_SIZE = (640, 480)  # the face is placed in a larger frame, as a camera would see it
FACE_SIDE = 200
FPS = 25


def _frame(face: Image.Image, offset: int) -> np.ndarray:
    """A 640x480 frame: a plain backdrop with the face, scaled to `FACE_SIDE`, left of centre by `offset`."""
    frame = Image.new("RGB", FRAME_SIZE, (96, 104, 112))
    x = (FRAME_SIZE[0] - FACE_SIDE) // 2 - offset
    frame.paste(face.convert("RGB").resize((FACE_SIDE, FACE_SIDE), Image.BICUBIC), (x, 120))
    return np.asarray(frame)


def assemble_talking_faces(faces: Sequence[ClipRow], voices: Sequence[ClipRow], out: str | Path,
                           per_emotion: int = 10, seed: int = 0) -> list[Path]:
    """Up to `per_emotion` clips per shared emotion: each CK+ sequence (its frames in order, shown
    for equal parts of the utterance, the face drifting a little as a speaker's does) muxed with an
    Emo-DB utterance of the same emotion, drawn without repeats by `seed`. The RAVDESS actor code
    numbers the CK+ subject; statement, repetition and intensity codes make names unique."""
    rng = np.random.default_rng(seed)
    sequences: dict[tuple[str, str, str], list[ClipRow]] = defaultdict(list)
    for row in faces:
        if row.label in RAVDESS_CODE:
            sequences[(row.label, row.speaker, row.meta["sequence"])].append(row)
    by_emotion: dict[str, list[ClipRow]] = defaultdict(list)
    for row in voices:
        by_emotion[row.label].append(row)
    subjects = {subject: i % 24 + 1 for i, subject in enumerate(sorted({s for _, s, _ in sequences}))}
    written, used_names = [], set()
    for emotion, code in RAVDESS_CODE.items():
        keys = sorted(k for k in sequences if k[0] == emotion)
        speech = [by_emotion[emotion][i] for i in rng.permutation(len(by_emotion[emotion]))]
        for key, voice in list(zip((keys[i] for i in rng.permutation(len(keys))), speech))[:per_emotion]:
            actor = subjects[key[1]]
            name = next((n for n in (f"01-01-{code}-{i}-{s}-{r}-{actor:02d}" for i, s, r in
                                     product(("01", "02"), repeat=3)) if n not in used_names), None)
            if name is None:  # the subject's eight names for this emotion are taken
                continue
            used_names.add(name)
            audio = read_audio(voice.audio)
            frames = sorted(sequences[key], key=lambda r: r.meta["frame"])
            count = max(1, round(len(audio) / 16_000 * FPS))
            video = [_frame(Image.open(frames[min(i * len(frames) // count, len(frames) - 1)].video), (i // 5) % 7)
                     for i in range(count)]
            path = Path(out) / f"Actor_{actor:02d}" / f"{name}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append(write_video(path, video, fps=FPS, audio=audio))
    return written
