"""Where a speech model loses what it hears: its projector's own label-alignment head scored beside
its written answers.

    python scripts/alignment_head.py --model runs/real_speech/emodb-shared/final \
        --manifest runs/real_speech/ravdess-train.jsonl --labels 'emodb&ravdess'

The alignment head is what `sft.label_alignment` trains (r1omni.train.alignment): a clip's mean
media embedding scored by cosine against each label word's embedding, the nearest word the
answer. Scored on the manifest's clips with each speaker standardised by their own statistics
(as `r1omni eval --standardize speaker`), it says how much of the emotion reaches the LM's input;
when it is well above the model's generated answers on the same clips, the LM loses it, and when
it is as low, the projector does. Prints UAR with its 95% interval and the answers' counts as JSON.

With `--warm-up TRAIN --epochs N`, the model's projectors are first trained as the cold start's
warm-up does (`sft.alignment_epochs=N`, batches of 8, seed 0) on TRAIN's clips, each speaker by
their own statistics, and that head is scored: a warm-up's length or rate chosen in a minute
instead of a cold start's quarter of an hour (frozen tower features come from the feature cache).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import torch

from r1omni.data import read_manifest
from r1omni.eval.metrics import bootstrap_intervals, uar
from r1omni.labels import lookup
from r1omni.models.cache import FeatureCache, default_cache_dir
from r1omni.predict import load_model
from r1omni.train.alignment import clip_mean, cosine_logits, label_words, warm_up_projectors


def head_answers(model: str, manifest: str, labels: str, warm_up: str | None = None, epochs: int = 5,
                 lr: float = 1e-3) -> tuple[list[str], list[str]]:
    """The true labels and the alignment head's answers for the manifest's rows with one of `labels`;
    with `warm_up` (a manifest), after `epochs` of the projector warm-up on its rows at rate `lr`."""
    predictor = load_model(model, device="cpu")
    rows = read_manifest(manifest)
    training = read_manifest(warm_up) if warm_up else []
    # Every clip, whatever its label, as eval does; both manifests at once, as a refit replaces the groups.
    predictor.standardize_on(training + rows, by="speaker")
    if warm_up:
        predictor.policy.feature_cache = FeatureCache(default_cache_dir())  # the towers run once, not every epoch
        clips = [predictor.read(row.id, row.video, row.audio) for row in training]
        warm_up_projectors(predictor.policy, clips, [row.label for row in training], labels, epochs, lr,
                           batch_size=8, say=lambda text: None)
    truth, answers = [], []
    with torch.no_grad():
        names, words = label_words(predictor.policy, labels)  # [C, H]
        for row in rows:
            if lookup(row.label) not in names:
                continue
            mean = clip_mean(predictor.policy, predictor.read(row.id, row.video, row.audio))  # [H]
            answers.append(names[int(cosine_logits(mean[None], words).argmax())])
            truth.append(lookup(row.label))
    return truth, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--labels", default="emodb&ravdess", help="the label words scored (a vocabulary)")
    parser.add_argument("--warm-up", help="a training manifest: warm the projectors up on it first")
    parser.add_argument("--epochs", type=int, default=5, help="warm-up epochs (with --warm-up)")
    parser.add_argument("--lr", type=float, default=1e-3, help="warm-up learning rate (with --warm-up)")
    args = parser.parse_args()
    truth, answers = head_answers(args.model, args.manifest, args.labels, args.warm_up, args.epochs, args.lr)
    warmed = {"warm_up": args.warm_up, "epochs": args.epochs, "lr": args.lr} if args.warm_up else {}
    print(json.dumps({"model": args.model, "manifest": args.manifest, **warmed, "n": len(truth),
                      "uar": uar(truth, answers), "uar_ci": bootstrap_intervals(truth, answers)["uar"],
                      "answers": dict(Counter(answers))}))


if __name__ == "__main__":
    main()
