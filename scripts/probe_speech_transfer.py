"""What makes speech emotion transfer between corpora: linear probes on frozen features.

    python scripts/probe_speech_transfer.py --data ../shared/data --out docs/figures/speech_transfer_probes.json

Corpora: Emo-DB (German, 10 speakers) and RAVDESS speech actors 13-24 (English, 12 actors), scored
over the six classes they share (angry, disgust, fear, happy, sad, neutral). Each corpus holds out
speakers that no choice here looks at (Emo-DB 15, 16; RAVDESS 21-24); every choice (layer,
normalisation, augmentation, C) is made on the development directions, training speakers of one
corpus -> training speakers of the other, and then scored once on the held-out speakers.

Features: Whisper tiny.en's encoder (the smol-omni audio tower, frozen) averaged over the clip's own
frames, at each of its 5 hidden states, with the last layer's standard deviation appended; and
eGeMAPS v02 functionals (openSMILE, 88 values). Normalisations, each fitted without labels on the
clips being scored or fitted on: `fit` (the fitting side's statistics, applied to both), `corpus`
(each corpus by its own), `speaker` (each speaker by their own clips). Augmentations of the
fitting side's clips (r1omni.data.augment; the originals kept): `channel` (room, band, noise),
`speed` (0.85-1.15: pitch and tempo together), `codec` (8 kHz telephone band, mu-law 8 bit),
`loudness` (-20 to +10 dB); one copy of each kind, or (what the recipe can afford to train on)
one copy per clip of a kind drawn at random. Features are cached in --cache.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from r1omni.data.augment import augment_speech

SHARED = ("angry", "disgust", "fear", "happy", "sad", "neutral")
HELD_OUT = {"emodb": {"15", "16"}, "ravdess": {"21", "22", "23", "24"}}
FOLDERS = {"emodb": "emodb", "ravdess": "ravdess_speech_actors13-24"}
AUGMENTATIONS = ("channel", "speed", "codec", "loudness")
NORMALISATIONS = ("fit", "corpus", "speaker")
SAMPLE_RATE = 16_000


def whisper_features(encoder, extractor, waves: list[np.ndarray]) -> np.ndarray:
    """``[clips, 6, 384]``: each hidden state's mean over the clip's own frames, then the last
    one's standard deviation (the tower pools the same frames: `clip_frames`)."""
    import torch

    mel = extractor(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")["input_features"]
    with torch.no_grad():
        states = encoder(mel, output_hidden_states=True).hidden_states  # 5 x [B, 1500, 384]
    out = []
    for i, wave in enumerate(waves):
        keep = max(1, -(-int(np.ceil(len(wave) / extractor.hop_length)) // 2))
        frames = [s[i, :keep] for s in states]
        out.append(torch.stack([f.mean(0) for f in frames] + [frames[-1].std(0)]).numpy())
    return np.stack(out)


def extract(rows, cache: Path, seed: int) -> dict:
    """id -> {"whisper": [6, 384], "egemaps": [88]} of the originals, and id|kind of the augmented
    copies of the training speakers' clips; cached in `cache` (an .npz)."""
    from transformers import WhisperFeatureExtractor

    from r1omni.data.acoustics import EGeMAPS
    from r1omni.media import read_audio
    from r1omni.models.packaged import whisper_tiny_encoder

    found = dict(np.load(cache)) if cache.is_file() else {}
    wanted = [(r, None) for r in rows] + [(r, k) for k in AUGMENTATIONS for r in rows
                                           if r.speaker not in HELD_OUT[r.dataset]]
    todo = [(r, k) for r, k in wanted if f"whisper|{r.id}|{k}" not in found]
    if todo:
        encoder, egemaps = whisper_tiny_encoder(), EGeMAPS()
        extractor = WhisperFeatureExtractor(feature_size=80)
        rng = np.random.default_rng(seed)
        started = time.perf_counter()
        for start in range(0, len(todo), 16):
            batch = todo[start : start + 16]
            waves = [read_audio(r.audio, max_seconds=30.0) for r, _ in batch]
            waves = [w if k is None else augment_speech(w, k, rng) for w, (_, k) in zip(waves, batch)]
            for (r, k), w, e in zip(batch, waves, whisper_features(encoder, extractor, waves)):
                found[f"whisper|{r.id}|{k}"] = e
                found[f"egemaps|{r.id}|{k}"] = egemaps.measure(w)
            print(f"  features {start + len(batch)}/{len(todo)} ({time.perf_counter() - started:.0f} s)", flush=True)
            if (start // 16) % 10 == 9 or start + 16 >= len(todo):
                np.savez(cache, **found)
    return found


def normalised(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each group's rows standardised by the group's own mean and deviation (no labels used)."""
    out = np.empty_like(x)
    for g in np.unique(groups):
        part = groups == g
        out[part] = (x[part] - x[part].mean(0)) / (x[part].std(0) + 1e-6)
    return out


def probe(fit_x, fit_y, test_x, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(fit_x)
    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(scaler.transform(fit_x), fit_y)
    return model.predict(scaler.transform(test_x))


class Side:
    """A set of clips and augmented copies as features, labels, corpora and speakers. One copy of
    each kind in `augmentations`, standardised in its own group (the speaker through that
    channel); or, with `drawn`, one copy per clip of a kind drawn at random from `drawn`,
    standardised with its speaker's originals, as r1omni trains on `r1omni data augment`'s copies."""

    def __init__(self, rows, found, feature: str, augmentations=(), drawn=(), seed: int = 0):
        from r1omni.labels import lookup

        rng = np.random.default_rng(seed)
        keys = [(r, None, None) for r in rows] + [(r, k, k) for k in augmentations for r in rows]
        keys += [(r, drawn[rng.integers(len(drawn))], None) for r in rows] if drawn else []
        self.x = np.stack([self.vector(found[f"{'egemaps' if feature == 'egemaps' else 'whisper'}|{r.id}|{k}"], feature)
                           for r, k, _ in keys])
        self.y = np.array([lookup(r.label) for r, _, _ in keys])
        self.corpus = np.array([f"{r.dataset}|{group}" for r, _, group in keys])
        self.speaker = np.array([f"{r.dataset}|{r.speaker}|{group}" for r, _, group in keys])
        self.originals = len(rows)

    @staticmethod
    def vector(value: np.ndarray, feature: str) -> np.ndarray:
        if feature == "egemaps":
            return value
        layer = int(feature.removeprefix("layer"))
        return value[layer] if layer < 5 else np.concatenate([value[4], value[5]])  # 5: last mean + std

    def normalised(self, how: str, reference: Side | None = None) -> np.ndarray:
        if how == "speaker":
            return normalised(self.x, self.speaker)
        if how == "corpus":
            return normalised(self.x, self.corpus)
        ref = (reference or self).x[: (reference or self).originals]
        return (self.x - ref.mean(0)) / (ref.std(0) + 1e-6)


def transfer(fit: Side, test: Side, how: str, c: float) -> dict:
    from r1omni.eval.metrics import bootstrap_intervals, uar, war

    predicted = probe(fit.normalised(how), fit.y, test.normalised(how, reference=fit), c)
    labels = list(test.y)
    return {"uar": round(uar(labels, list(predicted)), 4), "war": round(war(labels, list(predicted)), 4),
            "interval": [round(v, 4) for v in bootstrap_intervals(labels, list(predicted))["uar"]], "n": len(labels)}


def main() -> None:
    from r1omni.data.adapters import scan_dataset
    from r1omni.labels import lookup

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("runs/speech_transfer_features.npz"))
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the figures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = {name: [r for r in scan_dataset(name, args.data / folder).rows if lookup(r.label) in SHARED]
            for name, folder in FOLDERS.items()}
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    found = extract([r for part in rows.values() for r in part], args.cache, args.seed)
    train = {n: [r for r in part if r.speaker not in HELD_OUT[n]] for n, part in rows.items()}
    test = {n: [r for r in part if r.speaker in HELD_OUT[n]] for n, part in rows.items()}
    directions = [("emodb", "ravdess"), ("ravdess", "emodb")]
    features = [f"layer{i}" for i in range(6)] + ["egemaps"]

    # Development: training speakers of one corpus -> training speakers of the other.
    development = {}
    for feature, how, c in itertools.product(features, NORMALISATIONS, (0.01, 0.1, 1.0)):
        scores = [transfer(Side(train[a], found, feature), Side(train[b], found, feature), how, c)["uar"]
                  for a, b in directions]
        development[f"{feature} {how} C={c}"] = {"emodb->ravdess": scores[0], "ravdess->emodb": scores[1],
                                                   "mean": round(float(np.mean(scores)), 4)}
        print(f"dev {feature:8} {how:8} C={c:<5} {scores[0]:.3f} {scores[1]:.3f}", flush=True)
    best = max(development, key=lambda k: development[k]["mean"])
    feature, how, c = best.split(" ")[0], best.split(" ")[1], float(best.split("C=")[1])
    augmenting = {}
    for kinds in [()] + [(k,) for k in AUGMENTATIONS] + [AUGMENTATIONS]:
        scores = [transfer(Side(train[a], found, feature, kinds), Side(train[b], found, feature), how, c)["uar"]
                  for a, b in directions]
        augmenting["+".join(kinds) or "none"] = {"emodb->ravdess": scores[0], "ravdess->emodb": scores[1],
                                                 "mean": round(float(np.mean(scores)), 4)}
        print(f"dev augment {'+'.join(kinds) or 'none':30} {scores[0]:.3f} {scores[1]:.3f}", flush=True)
    kept = max(augmenting, key=lambda k: augmenting[k]["mean"])
    kinds = () if kept == "none" else tuple(kept.split("+"))
    # One copy per clip (what the recipe's cold starts can afford: twice the clips, not five
    # times), its kind drawn at random; the mean over three draws.
    one_copy = {}
    for drawn in (AUGMENTATIONS, tuple(k for k in AUGMENTATIONS if k != "speed")):
        scores = [np.mean([transfer(Side(train[a], found, feature, drawn=drawn, seed=s), Side(train[b], found, feature),
                                    how, c)["uar"] for s in range(3)]) for a, b in directions]
        one_copy["+".join(drawn)] = {"emodb->ravdess": round(float(scores[0]), 4),
                                     "ravdess->emodb": round(float(scores[1]), 4),
                                     "mean": round(float(np.mean(scores)), 4)}
        print(f"dev one copy of {'+'.join(drawn):30} {scores[0]:.3f} {scores[1]:.3f}", flush=True)
    recipe = tuple(max(one_copy, key=lambda k: one_copy[k]["mean"]).split("+"))

    # Test: once, with the choices above, on the held-out speakers; beside it in-corpus.
    chosen = {"feature": feature, "normalisation": how, "C": c, "augmentation": kept,
              "one_copy_of": "+".join(recipe)}
    held_out = {}
    for a, b in directions + [("emodb", "emodb"), ("ravdess", "ravdess")]:
        fit = Side(train[a], found, feature, kinds)
        for setting in sorted({how, "fit"}):
            held_out[f"{a}->{b} {setting}"] = transfer(fit, Side(test[b], found, feature), setting, c)
            print(f"test {a}->{b} {setting}: {held_out[f'{a}->{b} {setting}']}", flush=True)
    for a, b in directions:
        found_once = transfer(Side(train[a], found, feature, drawn=recipe), Side(test[b], found, feature), how, c)
        held_out[f"{a}->{b} {how} one copy"] = found_once
        print(f"test {a}->{b} {how} one copy of {'+'.join(recipe)}: {found_once}", flush=True)
    report = {"classes": SHARED, "held_out_speakers": {k: sorted(v) for k, v in HELD_OUT.items()},
              "clips": {n: {"train": len(train[n]), "test": len(test[n])} for n in rows},
              "development": development, "augmentation": augmenting, "one_copy": one_copy, "chosen": chosen,
              "test": held_out,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
              "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
