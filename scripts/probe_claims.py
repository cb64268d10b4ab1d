"""What a model's frozen towers can perceive of each claim its reasoning makes: a linear probe per
cue (synthetic world) or per voice attribute (measured levels), the ceiling of faithfulness.

    python scripts/probe_claims.py --model r1omni/assets/nano_base --cache runs/demo/features \
        --fit runs/demo/world/rl.jsonl runs/demo/world/coldstart.jsonl \
        --test runs/demo/world/test.jsonl runs/demo/world/ood_test.jsonl --out docs/figures/claim_probes_synth.json

Each clip's tower outputs are pooled over tokens (mean and max per dimension), standardised, and
a logistic regression per cue (present or not) or per attribute (its level, one of three) is
fitted on the `--fit` rows and scored on each `--test` manifest. For cues it also reports the
faithfulness a reasoning would reach by claiming exactly what the probes see: claims at
probability thresholds 0.5 to 0.9, scored as `r1omni eval` scores a model's reasoning (per clip
precision and recall, averaged). Writes the figures to `--out` (JSON) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from r1omni.claims import CUE_PATTERNS, LEVEL_WORDS, measurement_of
from r1omni.data import read_manifest
from r1omni.models import FeatureCache, load_policy

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


@torch.no_grad()
def pooled(policy, rows, modalities) -> np.ndarray:
    """[clips, 2 x width summed over modalities]: mean and max of each tower's tokens."""
    out = []
    for row in rows:
        media = policy.read_clip(row.video, row.audio, modalities)
        parts = []
        for modality in modalities:
            tokens = policy.tower_features(modality, media).float()  # [T, D]
            parts += [tokens.mean(0), tokens.max(0).values]
        out.append(torch.cat(parts).numpy())
    return np.stack(out)


def probe(fit_x, fit_y, test_x):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.1))
    model.fit(fit_x, fit_y)
    return model.predict_proba(test_x), list(model.classes_)


def cue_probes(fit_x, fit_m, test_x, test_m) -> dict:
    """Per cue: held-out accuracy, the majority baseline, precision and recall of saying it; and
    the per-clip faithfulness of claiming every cue whose probability passes each threshold."""
    cues = [c for c in CUE_PATTERNS if any(c in m.cues.get(CUE_PATTERNS[c][0], ()) for m in fit_m)]
    present = {c: np.array([c in m.cues.get(CUE_PATTERNS[c][0], ()) for m in test_m]) for c in cues}
    per_cue, probability = {}, {}
    for cue in cues:
        y = np.array([cue in m.cues.get(CUE_PATTERNS[cue][0], ()) for m in fit_m])
        if y.all() or not y.any():
            continue
        proba, classes = probe(fit_x, y, test_x)
        probability[cue] = proba[:, classes.index(True)]
        said, truth = probability[cue] > 0.5, present[cue]
        per_cue[cue] = {"modality": CUE_PATTERNS[cue][0], "accuracy": float((said == truth).mean()),
                        "majority": float(max(truth.mean(), 1 - truth.mean())), "base_rate": float(truth.mean()),
                        "precision": float(truth[said].mean()) if said.any() else None,
                        "recall": float(said[truth].mean()) if truth.any() else None}
    ceiling = {}
    for threshold in THRESHOLDS:
        precisions, recalls = [], []
        for i, measured in enumerate(test_m):
            claimed = {c for c in probability if probability[c][i] > threshold}
            true = {c for cues_ in measured.cues.values() for c in cues_}
            if claimed:
                precisions.append(len(claimed & true) / len(claimed))
            recalls.append(len(claimed & true) / max(len(true), 1))
        ceiling[str(threshold)] = {"precision": float(np.mean(precisions)) if precisions else None,
                                   "recall": float(np.mean(recalls)),
                                   "no_claims_rate": 1 - len(precisions) / len(test_m)}
    return {"per_cue": per_cue, "claiming_what_the_probes_see": ceiling}


def level_probes(fit_x, fit_m, test_x, test_m) -> dict:
    """Per voice attribute: held-out agreement of the probe's level with the measured one, the
    majority level's agreement, and agreement on the clips the probe is surest of."""
    result = {}
    for name in LEVEL_WORDS:
        y = np.array([m.levels[name] for m in fit_m])
        truth = np.array([m.levels[name] for m in test_m])
        proba, classes = probe(fit_x, y, test_x)
        guess = np.array(classes)[proba.argmax(1)]
        sure = proba.max(1) >= np.quantile(proba.max(1), 0.5)
        majority = np.bincount(y).argmax()
        result[name] = {"agreement": float((guess == truth).mean()), "majority": float((truth == majority).mean()),
                        "agreement_surest_half": float((guess[sure] == truth[sure]).mean())}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a saved model whose frozen towers are probed")
    parser.add_argument("--fit", nargs="+", required=True, help="manifests whose rows carry measurements")
    parser.add_argument("--test", nargs="+", required=True)
    parser.add_argument("--cache", help="the towers' feature cache (a folder)")
    parser.add_argument("--modalities", default="video,audio")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args()
    if args.out.exists() and not args.force:
        parser.error(f"{args.out} exists (--force replaces it)")
    modalities = tuple(args.modalities.split(","))
    policy = load_policy(args.model, device="cpu", dtype="float32").eval()
    if args.cache:
        policy.feature_cache = FeatureCache(args.cache)

    def load(paths):
        rows = [row for path in paths for row in read_manifest(path)]
        measured = [measurement_of(r.cues, r.meta, modalities) for r in rows]
        kept = [(r, m) for r, m in zip(rows, measured) if m is not None]
        return [r for r, _ in kept], [m for _, m in kept]

    fit_rows, fit_m = load(args.fit)
    fit_x = pooled(policy, fit_rows, modalities)
    results = {"model": args.model, "fit": args.fit, "fit_clips": len(fit_rows), "tests": {}}
    for path in args.test:
        rows, measured = load([path])
        x = pooled(policy, rows, modalities)
        probes = level_probes if measured[0].levels else cue_probes
        results["tests"][path] = {"clips": len(rows), **probes(fit_x, fit_m, x, measured)}
        print(path, json.dumps(results["tests"][path], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_name(f".{args.out.name}.tmp")  # never a half-written --out
    temporary.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(temporary, args.out)


if __name__ == "__main__":
    main()
