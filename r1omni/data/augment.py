"""Augmented copies of speech clips: the same utterance recorded or transmitted differently.

A model trained on one corpus hears one studio, one microphone and one level; speech from
elsewhere differs in all three. Training on copies that differ in them is one of the choices the
cross-corpus probes measured (docs/real_speech.md, "Speech across corpora"). Kinds:

- ``channel``: a random room, band and background noise (`augment_audio`);
- ``codec``: a telephone (8 kHz band, mu-law 8 bit);
- ``loudness``: -20 to +10 dB;
- ``speed``: 0.85-1.15, pitch and tempo together (hurt on the development speakers; offered for
  measuring, not used by the recipe).

Ranges are generic, not fitted to any test corpus. A copy keeps its clip's label, corpus and
speaker, so it falls in the same speaker-independent fold and the same statistics group.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

from r1omni.data.manifest import ClipRow
from r1omni.errors import R1OmniError
from r1omni.media import SAMPLE_RATE, read_audio, write_audio

SPEECH_AUGMENTATIONS = ("channel", "codec", "loudness", "speed")


def augment_audio(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 16 kHz waveform through a random room (half the time; RT60 0.05-0.6 s), a random band
    (half the time; 50-500 Hz to 2.5-7.5 kHz) and background noise (10-40 dB below the clip's level)."""
    out = wave.astype(np.float64)
    if rng.random() < 0.5:
        length = int(rng.uniform(0.05, 0.6) * SAMPLE_RATE)
        impulse = rng.normal(0, 1, length) * np.exp(-6.9 * np.arange(length) / length)  # -60 dB at the end
        impulse[0] = 1.0
        out = fftconvolve(out, impulse / np.sqrt(np.sum(impulse**2)))[: out.size]
    if rng.random() < 0.5:
        band = (rng.uniform(50, 500), rng.uniform(2500, 7500))
        out = sosfilt(butter(4, band, "bandpass", fs=SAMPLE_RATE, output="sos"), out)
    level = np.sqrt(np.mean(out**2)) if out.size else 0.0
    out = out + rng.normal(0, 1, out.size) * level * 10 ** (-rng.uniform(10, 40) / 20)
    return np.tanh(out).astype(np.float32)


def augment_speech(wave: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One random copy of a 16 kHz waveform ``[T]`` changed in the way `kind` names."""
    if kind == "channel":
        return augment_audio(wave, rng)
    if kind == "speed":  # played faster or slower: pitch and tempo move together
        factor = rng.uniform(0.85, 1.15)
        return resample_poly(wave, 100, int(round(100 * factor))).astype(np.float32)
    if kind == "codec":  # a telephone: 8 kHz, mu-law 8 bit, back to 16 kHz
        narrow = resample_poly(wave, 1, 2)
        peak = max(np.abs(narrow).max(), 1e-6)
        mu = np.sign(narrow / peak) * np.log1p(255 * np.abs(narrow / peak)) / np.log(256)
        mu = np.round(mu * 127) / 127
        narrow = np.sign(mu) * (256 ** np.abs(mu) - 1) / 255 * peak
        return resample_poly(narrow, 2, 1).astype(np.float32)
    if kind == "loudness":
        return np.clip(wave * 10 ** (rng.uniform(-20, 10) / 20), -1, 1).astype(np.float32)
    raise R1OmniError(f"unknown augmentation {kind!r}; known: {', '.join(SPEECH_AUGMENTATIONS)}")


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"channel,codec"`` -> the kinds, each known, at least one."""
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in SPEECH_AUGMENTATIONS]
    if unknown or not kinds:
        raise R1OmniError(f"augmentation kinds: got {text!r}; choose from {', '.join(SPEECH_AUGMENTATIONS)} "
                          "(comma-separated)")
    return kinds


@dataclass
class Augmented:
    rows: list[ClipRow]  # every original row, then its copies
    failures: dict[str, str] = field(default_factory=dict)  # row id -> why it has no copies


def augment_rows(rows: list[ClipRow], kinds: tuple[str, ...], copies: int, folder: Path, seed: int = 0,
                 named_in: Path | None = None, progress: Callable[[int], None] | None = None) -> Augmented:
    """Each row kept, followed by `copies` copies of its sound, each of a kind drawn from `kinds`
    and written to `folder` as FLAC (``<id>~<k>-<kind>.flac``); the copies' rows name the files in
    `named_in` (default `folder`: where a folder written aside will be published). The draws
    depend only on `seed` and the row's id, so a row gets the same copies in any manifest. A row
    whose sound cannot be read keeps no copies and is listed in `failures`; the others go on.
    Copies carry no rationale, caption or cues: those describe the original's sound."""
    if copies < 1:
        raise R1OmniError(f"copies must be at least 1, got {copies}")
    out, failures = [], {}
    for done, row in enumerate(rows, 1):
        out.append(row)
        source = row.audio or row.video
        try:
            if source is None:
                raise R1OmniError(f"{row.id}: the row names no audio or video file")
            wave = read_audio(source, max_seconds=None)
            rng = np.random.default_rng([seed, zlib.crc32(row.id.encode())])
            for k in range(copies):
                kind = kinds[int(rng.integers(len(kinds)))]
                name = f"{_file_name(row.id)}~{k}-{kind}.flac"
                if (folder / name).exists():
                    raise R1OmniError(f"{row.id}: another row's copy is already written as {name}")
                write_audio(folder / name, augment_speech(wave, kind, rng))
                meta = {**(row.meta or {}), "augmented_from": row.id, "augmentation": kind}
                out.append(replace(row, id=f"{row.id}~{k}-{kind}", audio=str((named_in or folder) / name), meta=meta,
                                   rationale=None, caption=None, cues=None))
        except R1OmniError as err:
            failures[row.id] = str(err)
        if progress is not None:
            progress(done)
    return Augmented(out, failures)


def _file_name(row_id: str) -> str:
    """A row id as a file name: path separators and other odd characters replaced."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in row_id)
