"""Which face tower sees emotion best on real faces: a linear probe on each tower's features.

    python scripts/probe_face_towers.py --data ../shared/data --tower runs/real_av/face-tower \
        --out docs/figures/face_tower_probes.json

Towers: PyEmotion's CNN (`face_cnn`, the package's weights) and each `--tower` folder (`r1omni
pretrain-face`). For each, its 256-wide features of every face (grey 48 px, as the tower reads
them), standardised, and a logistic regression (balanced class weights, C = 0.1):
- FER-2013: fitted on its training faces (9,436 here), scored on its test faces (PrivateTest);
- CK+ transfer: the same probe scored on CK+ (contempt dropped: FER-2013 has no such class), the
  case of a model trained on FER-2013 meeting faces it never saw; once with FER-2013's feature
  statistics, once with CK+'s own (fitted without labels, as `r1omni eval --standardize corpus`);
- CK+ by subject: fitted and scored within CK+ over its 10 subject folds (`ckplus` adapter).
Also each tower's own 7-class head, with no probe. UAR with 95% bootstrap intervals over faces.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch


def features(tower, faces: np.ndarray, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(features [N, 256], head's argmax [N]) of uint8 faces [N, 48, 48, 3]."""
    with torch.no_grad():
        x = tower.preprocess(faces)
        parts = [(tower(x[i : i + batch]), tower.expression_logits(x[i : i + batch])) for i in range(0, len(x), batch)]
    return torch.cat([f for f, _ in parts]).numpy(), torch.cat([h for _, h in parts]).argmax(1).numpy()


def probe(fit_x, fit_y, test_x):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced"))
    return model.fit(fit_x, fit_y).predict(test_x)


def standardised(x: np.ndarray) -> np.ndarray:
    """Each feature by the set's own mean and deviation (no labels used)."""
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


def scored(labels, predictions) -> dict:
    from r1omni.eval.metrics import bootstrap_intervals, uar

    return {"uar": round(uar(list(labels), list(predictions)), 4),
            "interval": [round(v, 4) for v in bootstrap_intervals(list(labels), list(predictions))["uar"]],
            "n": len(labels)}


def main() -> None:
    from r1omni.data.adapters import scan_dataset
    from r1omni.models.towers import FaceCNN, load_tower
    from r1omni.pretrain.face_tower import face_arrays

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with fer2013/ and ckplus48/")
    parser.add_argument("--tower", type=Path, action="append", default=[], help="a face tower folder (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the figures")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    started = time.perf_counter()
    fer = scan_dataset("fer2013", args.data / "fer2013").rows
    ck = [r for r in scan_dataset("ckplus", args.data / "ckplus48").rows]
    sets = {"fer_train": [r for r in fer if r.split == "train"], "fer_test": [r for r in fer if r.split == "test"],
            "ck": [r for r in ck if r.label != "contempt"]}
    faces = {name: face_arrays(rows) for name, rows in sets.items()}
    labels = {name: np.array([r.label for r in rows]) for name, rows in sets.items()}
    folds = np.array([r.fold for r in sets["ck"]])

    towers = {"PyEmotion face_cnn": FaceCNN.from_pyemotion({"crop": 1.0})}
    towers.update({f"face_net {folder}": load_tower(folder) for folder in args.tower})
    results = {}
    for name, tower in towers.items():
        classes = tower.config.get("labels") or ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
        feats, heads = {}, {}
        for side in faces:
            feats[side], head = features(tower, faces[side])
            heads[side] = np.array(classes)[head]
        by_subject = np.empty(len(folds), dtype=object)
        for fold in np.unique(folds):
            held = folds == fold
            by_subject[held] = probe(feats["ck"][~held], labels["ck"][~held], feats["ck"][held])
        fer_probe = probe(feats["fer_train"], labels["fer_train"], np.concatenate([feats["fer_test"], feats["ck"]]))
        ck_own = probe(standardised(feats["fer_train"]), labels["fer_train"], standardised(feats["ck"]))
        results[name] = {
            "probe FER-2013 train -> test": scored(labels["fer_test"], fer_probe[: len(labels["fer_test"])]),
            "probe FER-2013 train -> CK+": scored(labels["ck"], fer_probe[len(labels["fer_test"]) :]),
            "probe FER-2013 train -> CK+, CK+'s own statistics": scored(labels["ck"], ck_own),
            "probe CK+ by subject (10 folds)": scored(labels["ck"], by_subject),
            "own head FER-2013 train": scored(labels["fer_train"], heads["fer_train"]),
            "own head FER-2013 test": scored(labels["fer_test"], heads["fer_test"]),
            "own head CK+": scored(labels["ck"], heads["ck"]),
        }
    report = {"towers": results, "faces": {k: len(v) for k, v in sets.items()},
              "ck_contempt_dropped": sum(r.label == "contempt" for r in ck),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
              "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, rows in results.items():
        print(name)
        for what, s in rows.items():
            print(f"  {what:<34} UAR {s['uar']:.1%} [{s['interval'][0]:.1%}, {s['interval'][1]:.1%}]  n={s['n']}")


if __name__ == "__main__":
    main()
