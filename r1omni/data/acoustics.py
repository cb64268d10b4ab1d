"""Acoustic measurements of speech and rationales that put them into words.

Each clip is measured with openSMILE's eGeMAPS v02 functionals (88 values: pitch, loudness,
spectral balance, voice quality, tempo). Four of them become the rationale of a cold start:
pitch level, pitch variation, loudness and tempo, each said as the lower, middle or upper third
of the corpus the clips come from (terciles of its unlabelled clips). The sentence states what
was measured and nothing else: no emotion is named in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from r1omni.claims import LEVEL_WORDS
from r1omni.data.manifest import ClipRow
from r1omni.errors import ConfigError, ManifestError, R1OmniError
from r1omni.media import SAMPLE_RATE, read_audio

# Each attribute's eGeMAPS functional; its words for the lower, middle and upper third of a
# corpus are r1omni.claims.LEVEL_WORDS, which also reads them back from a model's reasoning.
ATTRIBUTES: dict[str, str] = {
    "pitch": "F0semitoneFrom27.5Hz_sma3nz_amean",
    "loudness": "loudness_sma3_amean",
    "variation": "F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2",
    "tempo": "VoicedSegmentsPerSec",
}
Bounds = dict[str, tuple[float, float]]  # attribute -> the values that split a corpus into thirds


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


def tercile_bounds(measured: Measured) -> Bounds:
    """Per attribute, the values that split `measured` into thirds."""
    if len(measured.rows) < 3:
        raise R1OmniError(f"terciles need at least 3 measured clips, got {len(measured.rows)}")
    return {name: tuple(float(q) for q in np.quantile(measured.column(functional), [1 / 3, 2 / 3]))
            for name, functional in ATTRIBUTES.items()}


def tercile_levels(values: np.ndarray, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """0, 1 or 2 per value: its third of `bounds` (default: of the values' own distribution)."""
    low, high = bounds if bounds is not None else np.quantile(values, [1 / 3, 2 / 3])
    return (values > low).astype(int) + (values > high).astype(int)


def bounds_of_rows(rows: list[ClipRow], where: str = "") -> Bounds | None:
    """The terciles a described manifest's levels were taken against (each row's
    ``meta.acoustics[attribute].bounds``), or None when no row carries measured levels;
    `ManifestError` when only some rows with sound do, or rows disagree. Rows without sound (face
    images in a mixed manifest) have nothing to measure and are passed over."""
    rows = [row for row in rows if row.audio]
    described = [((row.meta or {}).get("acoustics") or {}) for row in rows]
    if not any(described):
        return None
    found: dict[str, set[tuple[float, float]]] = {name: set() for name in ATTRIBUTES}
    for row, acoustics in zip(rows, described):
        for name in ATTRIBUTES:
            bounds = (acoustics.get(name) or {}).get("bounds")
            if bounds is None:
                raise ManifestError(f"{where or 'manifest'}: row {row.id} has no measured {name} terciles; "
                                    "describe every row with r1omni data describe-voice")
            found[name].add(tuple(float(b) for b in bounds))
    mixed = [name for name, values in found.items() if len(values) > 1]
    if mixed:
        raise ManifestError(f"{where or 'manifest'}: rows were described against different terciles "
                            f"({', '.join(mixed)})")
    return {name: next(iter(values)) for name, values in found.items()}


def with_measured_levels(rows: list[ClipRow], bounds: Bounds | None = None,
                         progress: Callable[[int], None] | None = None) -> tuple[list[ClipRow], dict[str, str]]:
    """`rows` with their sound measured into ``meta.acoustics`` against `bounds` (default: the
    rows' own terciles), in order; a row whose sound cannot be measured is kept as it was and
    named in the failures (id -> why)."""
    measured = measure_rows(rows, progress)
    found = dict(zip((r.id for r in measured.rows), acoustics_of(measured, bounds or tercile_bounds(measured)))) \
        if measured.rows else {}
    out = [ClipRow(**{**row.to_json(), "meta": {**(row.meta or {}), "acoustics": found[row.id]}})
           if row.id in found else row for row in rows]
    return out, measured.failures


def describe(levels: dict[str, int]) -> str:
    """The rationale for one clip's levels ({attribute: 0, 1 or 2})."""
    word = {name: LEVEL_WORDS[name][level] for name, level in levels.items()}
    return (f"The voice is {word['pitch']} and {word['loudness']}, with a {word['variation']} pitch contour "
            f"and a {word['tempo']} tempo.")


def acoustics_of(measured: Measured, bounds: Bounds) -> list[dict]:
    """Each measured clip's ``meta.acoustics``: per attribute its value, its level against `bounds`
    and the bounds themselves, so that a row says what its levels are relative to (rounded as
    written, so that levels recomputed from a row's bounds agree with its own)."""
    bounds = {name: tuple(round(float(b), 4) for b in pair) for name, pair in bounds.items()}
    columns = {name: np.round(measured.column(functional), 4) for name, functional in ATTRIBUTES.items()}
    levels = {name: tercile_levels(values, bounds[name]) for name, values in columns.items()}
    return [{name: {"value": float(columns[name][i]), "level": int(levels[name][i]),
                    "bounds": list(bounds[name])} for name in ATTRIBUTES}
            for i in range(len(measured.values))]


def measure_clip(audio: np.ndarray, bounds: Bounds, egemaps: EGeMAPS | None = None) -> dict:
    """One clip's ``meta.acoustics`` from its mono 16 kHz sound (`acoustics_of` for one clip)."""
    egemaps = egemaps or EGeMAPS()
    return acoustics_of(Measured(egemaps.names, [], egemaps.measure(audio)[None], {}), bounds)[0]


def explain_rows(measured: Measured, bounds: Bounds | None = None) -> list[ClipRow]:
    """The measured rows with a `rationale` (and the same `caption`) from their acoustics against
    `bounds` (default: their own terciles), and the values and levels behind it in
    ``meta["acoustics"]``."""
    bounds = bounds or tercile_bounds(measured)
    explained = []
    for row, acoustics in zip(measured.rows, acoustics_of(measured, bounds)):
        text = describe({name: value["level"] for name, value in acoustics.items()})
        explained.append(ClipRow(**{**row.to_json(), "rationale": text, "caption": text,
                                    "meta": {**(row.meta or {}), "acoustics": acoustics}}))
    return explained
