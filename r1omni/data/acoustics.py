"""Acoustic measurements of speech and rationales that put them into words.

Each clip is measured with openSMILE's eGeMAPS v02 functionals (88 values: pitch, loudness,
spectral balance, voice quality, tempo). Four of them become the rationale of a cold start:
pitch level, pitch variation, loudness and tempo, each said as the lower, middle or upper third
of the corpus the clips come from (terciles of its unlabelled clips). The sentence states what
was measured and nothing else: no emotion is named in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from r1omni.data.manifest import ClipRow
from r1omni.errors import ConfigError, R1OmniError

SAMPLE_RATE = 16_000

# name: (eGeMAPS functional, words for the lower, middle and upper third of the corpus)
ATTRIBUTES: dict[str, tuple[str, tuple[str, str, str]]] = {
    "pitch": ("F0semitoneFrom27.5Hz_sma3nz_amean", ("low-pitched", "mid-pitched", "high-pitched")),
    "loudness": ("loudness_sma3_amean", ("quiet", "moderately loud", "loud")),
    "variation": ("F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2", ("flat", "moderately varied", "widely varying")),
    "tempo": ("VoicedSegmentsPerSec", ("slow", "moderate", "fast")),
}


def _smile():
    try:
        import opensmile
    except ImportError:
        raise ConfigError("acoustic measurement needs openSMILE: pip install 'r1omni[speech]'") from None
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.Functionals)


class EGeMAPS:
    """eGeMAPS v02 functionals of a mono 16 kHz signal: `names` and `measure(audio) -> [88]`."""

    def __init__(self):
        self.smile = _smile()
        self.names: list[str] = list(self.smile.feature_names)

    def measure(self, audio: np.ndarray) -> np.ndarray:
        frame = self.smile.process_signal(np.asarray(audio, dtype=np.float32), SAMPLE_RATE)
        return frame.to_numpy(dtype=np.float64)[0]


@dataclass
class Measured:
    """eGeMAPS of the rows that could be read (`values[i]` belongs to `rows[i]`) and why the
    others could not."""

    names: list[str]
    rows: list[ClipRow]
    values: np.ndarray  # [rows, 88]
    failures: dict[str, str]

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]


def measure_rows(rows: list[ClipRow], progress: Callable[[int], None] | None = None) -> Measured:
    """eGeMAPS of each row's sound (the audio file, else the video's soundtrack); a row whose
    sound cannot be read is listed in `failures` with its error, the others go on."""
    from r1omni.media import read_audio

    egemaps = EGeMAPS()
    kept, values, failures = [], [], {}
    for done, row in enumerate(rows, 1):
        source = row.audio or row.video
        try:
            if source is None:
                raise R1OmniError(f"{row.id}: the row names no audio or video file")
            audio = read_audio(source, max_seconds=None)
            if not np.any(audio):
                raise R1OmniError(f"{source}: the sound is silent")
            values.append(egemaps.measure(audio))
            kept.append(row)
        except R1OmniError as err:
            failures[row.id] = str(err)
        if progress is not None:
            progress(done)
    return Measured(egemaps.names, kept, np.array(values).reshape(len(kept), len(egemaps.names)), failures)


# The rationale's one sentence; `stated_levels` reads the levels back from a model's reasoning.
_SENTENCE = re.compile(r"The voice is (?P<pitch>[\w-]+) and (?P<loudness>[\w ]+?), with an? (?P<variation>[\w ]+?) "
                       r"pitch contour and an? (?P<tempo>\w+) tempo\.")


def tercile_bounds(measured: Measured) -> dict[str, tuple[float, float]]:
    """Per attribute, the values that split `measured` into thirds."""
    if len(measured.rows) < 3:
        raise R1OmniError(f"terciles need at least 3 measured clips, got {len(measured.rows)}")
    return {name: tuple(float(q) for q in np.quantile(measured.column(functional), [1 / 3, 2 / 3]))
            for name, (functional, _) in ATTRIBUTES.items()}


def tercile_levels(values: np.ndarray, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """0, 1 or 2 per value: its third of `bounds` (default: of the values' own distribution)."""
    low, high = bounds if bounds is not None else np.quantile(values, [1 / 3, 2 / 3])
    return (values > low).astype(int) + (values > high).astype(int)


def measured_levels(measured: Measured, bounds: dict[str, tuple[float, float]]) -> list[dict[str, int]]:
    """Each measured clip's level per attribute against `bounds` (e.g. the training clips')."""
    columns = {name: tercile_levels(measured.column(functional), bounds[name])
               for name, (functional, _) in ATTRIBUTES.items()}
    return [{name: int(columns[name][i]) for name in ATTRIBUTES} for i in range(len(measured.rows))]


def describe(levels: dict[str, int]) -> str:
    """The rationale for one clip's levels ({attribute: 0, 1 or 2})."""
    word = {name: ATTRIBUTES[name][1][level] for name, level in levels.items()}
    return (f"The voice is {word['pitch']} and {word['loudness']}, with a {word['variation']} pitch contour "
            f"and a {word['tempo']} tempo.")


def stated_levels(text: str) -> dict[str, int] | None:
    """The levels a reasoning text states in the rationale's sentence, or None when it has no
    such sentence (a word outside an attribute's three counts as no statement of it)."""
    match = _SENTENCE.search(text or "")
    if match is None:
        return None
    return {name: words.index(match[name]) for name, (_, words) in ATTRIBUTES.items() if match[name] in words}


def rationale_agreement(texts: list[str], truth: list[dict[str, int]]) -> dict:
    """How often reasoning texts describe their clip's measured sound: the share of texts that
    state a description, and per attribute the share of stated levels equal to the measured one."""
    stated = [stated_levels(t) for t in texts]
    result = {"described": sum(s is not None for s in stated) / max(len(texts), 1)}
    for name in ATTRIBUTES:
        pairs = [(s[name], t[name]) for s, t in zip(stated, truth) if s is not None and name in s]
        result[name] = sum(a == b for a, b in pairs) / len(pairs) if pairs else None
    return result


def explain_rows(measured: Measured) -> list[ClipRow]:
    """The measured rows with a `rationale` (and the same `caption`) from their acoustics against
    their own terciles, and the values and levels behind it in ``meta["acoustics"]``."""
    bounds = tercile_bounds(measured)
    columns = {name: measured.column(functional) for name, (functional, _) in ATTRIBUTES.items()}
    levels = {name: tercile_levels(values, bounds[name]) for name, values in columns.items()}
    explained = []
    for i, row in enumerate(measured.rows):
        clip_levels = {name: int(levels[name][i]) for name in ATTRIBUTES}
        text = describe(clip_levels)
        acoustics = {name: {"value": round(float(columns[name][i]), 4), "level": clip_levels[name]}
                     for name in ATTRIBUTES}
        explained.append(ClipRow(**{**row.to_json(), "rationale": text, "caption": text,
                                    "meta": {**(row.meta or {}), "acoustics": acoustics}}))
    return explained
