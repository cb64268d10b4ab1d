"""A source-filter voice whose prosody carries emotion.

Source: a glottal pulse train following an F0 contour (pitch level, range, contour shape,
tremor, jitter), with per-cycle shimmer and aspiration noise. Filter: cascaded formant
resonators per vowel, scaled by the speaker's vocal-tract length. Syllables with consonant
onsets, pauses and an amplitude envelope give the rhythm; a recording channel (reverberation,
band limits, noise) comes last.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, sosfilt

from r1omni.data.synth.people import Person

SAMPLE_RATE = 16_000
# Formants (Hz) and bandwidths of five vowels for an average adult tract.
VOWELS = {
    "a": ((730, 1090, 2440, 3400), (90, 110, 160, 250)),
    "e": ((530, 1840, 2480, 3500), (70, 100, 160, 250)),
    "i": ((290, 2250, 2890, 3600), (60, 90, 150, 250)),
    "o": ((570, 840, 2410, 3400), (80, 100, 160, 250)),
    "u": ((300, 870, 2240, 3300), (60, 90, 150, 250)),
}
REFERENCE_LEVEL = 0.08  # RMS of a neutral voice at 0 dB, leaving headroom for +12 dB


def _formant_filter(formants, bandwidths, scale: float, rate: int):
    """One IIR filter (b, a) cascading a 2-pole resonator per formant, unity gain at DC."""
    b, a = np.array([1.0]), np.array([1.0])
    for f, bw in zip(formants, bandwidths):
        f = min(f / scale, 0.45 * rate)
        r = np.exp(-np.pi * bw / rate)
        pole = np.array([1.0, -2.0 * r * np.cos(2 * np.pi * f / rate), r * r])
        a = np.convolve(a, pole)
        b = b * pole.sum()
    return b, a


def _timeline(prosody: dict, person: Person, n: int, rate: int, rng: np.random.Generator):
    """Syllable spans and pauses: returns a per-sample syllable index (-1 in pauses) and the
    syllable start/end samples."""
    syllable_s = 1.0 / (person.syllable_rate * prosody["rate"])
    total = n / rate
    speech = total * (1.0 - prosody["pauses"])
    lengths = []
    while sum(lengths) < speech:
        lengths.append(syllable_s * rng.uniform(0.75, 1.25))
    lengths[-1] -= sum(lengths) - speech
    # Pauses go at random syllable boundaries (phrase breaks), plus a short lead-in.
    pause_total = total - speech
    breaks = max(1, int(round(prosody["pauses"] * 12)))
    positions = np.sort(rng.choice(len(lengths) + 1, size=min(breaks, len(lengths) + 1), replace=False))
    pause_len = pause_total / len(positions)
    starts, ends, t = [], [], 0.0
    for i, length in enumerate(lengths):
        if i in positions:
            t += pause_len
        starts.append(t)
        t += length
        ends.append(t)
    index = np.full(n, -1, dtype=np.int64)
    bounds = (np.array([starts, ends]) * rate).astype(np.int64).clip(0, n)
    for k, (s, e) in enumerate(bounds.T):
        index[s:e] = k
    return index, bounds


def synthesize_voice(
    prosody: dict, person: Person, duration: float, rng: np.random.Generator, rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Mono float32 speech of `duration` seconds with the given prosody (before the channel)."""
    n = int(round(duration * rate))
    t = np.arange(n, dtype=np.float64) / rate
    syllable, bounds = _timeline(prosody, person, n, rate, rng)
    count = bounds.shape[1]

    # F0 contour in semitones around the speaker's base: level + linear contour + accents.
    accents = rng.normal(0.0, prosody["pitch_range"] / 3.0, count)
    centres = bounds.mean(axis=0) / rate
    semitones = prosody["pitch_shift"] + prosody["contour"] * (t / duration - 0.5)
    semitones += np.interp(t, centres, accents) if count > 1 else accents[0]
    semitones += prosody["tremor"] * 1.2 * np.sin(2 * np.pi * 6.0 * t + rng.uniform(0, 6.3))
    f0 = person.f0 * 2.0 ** (semitones / 12.0)
    # Jitter: each glottal cycle's period varies at random by about `person.jitter`.
    cycles = (np.cumsum(f0) / rate).astype(np.int64)
    f0 *= 1.0 + person.jitter * rng.normal(0, 1, cycles[-1] + 2)[cycles]

    # Glottal source: derivative of a raised-cosine flow pulse; pressed voice closes faster.
    phase = np.cumsum(f0) / rate
    position = phase % 1.0
    open_quotient = np.clip(0.6 - 0.25 * prosody["tension"] + 0.15 * prosody["breathiness"], 0.3, 0.85)
    flow = np.where(position < open_quotient, np.sin(np.pi * position / open_quotient) ** 2, 0.0)
    source = np.diff(flow, prepend=0.0) * rate / person.f0
    cycles = phase.astype(np.int64)
    source *= 1.0 + person.shimmer * rng.normal(0, 1, cycles[-1] + 2)[cycles]
    breath = person.breath + prosody["breathiness"]
    source += 0.25 * breath * rng.normal(0, 1, n) * (0.4 + flow)

    # Envelope: syllables swell and fade, consonant onsets are noise bursts, pauses are silent.
    voiced = syllable >= 0
    within = np.zeros(n)
    lengths = np.maximum(bounds[1] - bounds[0], 1)
    within[voiced] = (np.arange(n)[voiced] - bounds[0][syllable[voiced]]) / lengths[syllable[voiced]]
    envelope = np.where(voiced, np.sin(np.pi * np.clip(within, 0, 1)) ** 0.6, 0.0)
    envelope *= 1.0 + 0.5 * prosody["tremor"] * np.sin(2 * np.pi * 6.0 * t)

    # Vowel filters, one per vowel, applied to that vowel's syllables.
    vowel_of = rng.integers(0, len(VOWELS), count)
    speech = np.zeros(n)
    for v, (formants, bandwidths) in enumerate(VOWELS.values()):
        mask = voiced & (vowel_of[np.maximum(syllable, 0)] == v)
        if mask.any():
            b, a = _formant_filter(formants, bandwidths, person.vocal_tract, rate)
            speech += lfilter(b, a, source * envelope * mask)
    consonant = voiced & (within < 0.18) & (vowel_of[np.maximum(syllable, 0)] % 2 == 0)
    hiss = lfilter(*butter(2, 2500 / (rate / 2), "high"), rng.normal(0, 1, n))
    speech += 0.15 * hiss * consonant * envelope.max()

    # Tension brightens the spectrum; loudness sets the level relative to the neutral voice.
    speech += prosody["tension"] * 0.6 * np.diff(speech, prepend=0.0) * 4
    rms = np.sqrt(np.mean(speech[voiced] ** 2)) if voiced.any() else 1.0
    speech *= REFERENCE_LEVEL / max(rms, 1e-9) * 10 ** (prosody["loudness"] / 20)
    return speech.astype(np.float32)


def apply_channel(
    audio: np.ndarray, rt60: float, band: tuple[float, float] | None, snr_db: float,
    rng: np.random.Generator, rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Room reverberation, band limits and background noise, then a soft limiter."""
    out = audio.astype(np.float64)
    length = int(rt60 * rate)
    if length > 0:  # an RT60 under one sample is a dry room
        decay = np.exp(-6.9 * np.arange(length) / length)  # -60 dB at rt60
        impulse = rng.normal(0, 1, length) * decay
        impulse[0] = 1.0
        impulse /= np.sqrt(np.sum(impulse**2))
        out = fftconvolve(out, impulse)[: out.size]
    if band is not None:
        out = sosfilt(butter(4, band, "bandpass", fs=rate, output="sos"), out)
    noise = rng.normal(0, 1, out.size)
    level = REFERENCE_LEVEL * 10 ** (-snr_db / 20)  # noise relative to a neutral voice
    out += level * noise
    return np.tanh(out).astype(np.float32)
