"""Speech that transfers: speech models trained on Emo-DB, on RAVDESS and on both, each scored on
both corpora's held-out speakers, and leave-one-corpus-out models scored on the corpus they never
heard (README "Speech across corpora").

    python scripts/real_speech_recipe.py --data ../shared/data

Corpora: Emo-DB (German, 10 speakers; 15 and 16 held out) and RAVDESS speech actors 13-24
(English, 12 actors; 21-24 held out). Five smol-omni cold starts (SFT on measured rationales, as
the Emo-DB recipe's), each reading Whisper tiny's second encoder layer (`--audio-layers 2`) with
each speaker's features standardised by that speaker's own statistics (`data.standardize_by:
speaker`), the two choices the transfer probes made on development speakers
(scripts/probe_speech_transfer.py): `emodb` on Emo-DB's eight training speakers, `ravdess` on
RAVDESS's eight training actors, `both` on the two together (label sets merged: `emodb+ravdess`,
9 labels; at most --per-class clips of each corpus and class, so batches are balanced across
corpora and classes in expectation). The leave-one-corpus-out models `emodb-shared` and
`ravdess-shared` train on one corpus's training speakers, on the six classes the two corpora share
(`data mix --labels 'emodb&ravdess'`, as the probes are fitted), each clip followed by one copy of
a kind drawn from channel, codec and loudness (`r1omni data augment`; the probes' development
choice, one copy per clip so that a cold start takes twice the time, not five times). The models
made for speech they never heard (`both` and the leave-one-corpus-out pair) read one audio token,
the clip's mean (`model init --audio-utterance-only`: 61.7% against 50.3% with the frames on the
development actors, docs/real_speech.md); `emodb` and `ravdess` read the tower's frames. Each model
is scored by `r1omni eval` on both corpora's held-out speakers: in-corpus for the corpora it
trained on, leave-one-corpus-out for the other (labels mapped, the classes it never learnt dropped
and counted), each speaker standardised by their own clips (fitted without labels), and the
single-corpus models without augmentation also with their training clips' statistics. Beside each
score, a linear probe on the same frozen features (the tower's utterance token), fitted on the
same training clips, standardised the same way. A step whose output exists is not run again
(OUT/steps.json keeps its time); --fresh starts over. Writes OUT/results.json and OUT/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from recipe_steps import ROOT, Steps, percent, r1omni

CORPORA = {  # name: (folder under --data, held-out speakers)
    "emodb": ("emodb", "15,16"),
    "ravdess": ("ravdess_speech_actors13-24", "21,22,23,24"),
}
SHARED = "emodb&ravdess"  # the six classes both corpora have
AUGMENTATIONS = "channel,codec,loudness"  # one copy per clip of a kind drawn from these


@dataclass(frozen=True)
class Model:
    corpora: tuple[str, ...]  # trained on
    labels: str  # label set
    augmented: bool = False  # trained on its clips and one augmented copy of each
    frames: bool = False  # the LM reads the audio tower's frames, not its one utterance token


MODELS = {
    # One corpus each, all of its classes, no copies: the frames (with one token `emodb` fell to
    # 75.6% in-corpus, docs/real_speech.md).
    "emodb": Model(("emodb",), "emodb", frames=True),
    "ravdess": Model(("ravdess",), "ravdess", frames=True),
    # Made for speech they never heard: one audio token, the choice made on development actors.
    "both": Model(("emodb", "ravdess"), "emodb+ravdess"),
    "emodb-shared": Model(("emodb",), SHARED, augmented=True),  # leaving RAVDESS out: the shared
    "ravdess-shared": Model(("ravdess",), SHARED, augmented=True),  # classes, with augmented copies
}
BASES = {False: "smol-omni", True: "smol-omni-frames"}  # by Model.frames: the untrained model each starts from
STATISTICS = {"speaker": "each speaker's own", "model": "training clips'"}
AUDIO_LAYERS = 2  # Whisper tiny's layer that transferred best on the development speakers


def prepare(out: Path, data: Path, args, steps: Steps) -> None:
    for corpus, (folder, held_out) in CORPORA.items():
        steps.run(f"prepare {corpus}", out / f"{corpus}-all.jsonl", r1omni(
            "data", "prepare", "--dataset", corpus, "--root", data / folder, "--out", out / f"{corpus}-all.jsonl"))
        steps.run(f"split {corpus}", out / f"{corpus}-test.jsonl", r1omni(
            "data", "split", "--manifest", out / f"{corpus}-all.jsonl", "--test-speakers", held_out,
            "--names", f"{corpus}-train,{corpus}-test", "--out", out))
    steps.run("mix both", out / "both-train.jsonl", r1omni(
        "data", "mix", *[arg for corpus in CORPORA for arg in ("--manifest", out / f"{corpus}-train.jsonl")],
        "--per-class", args.per_class, "--seed", 0, "--out", out / "both-train.jsonl"))
    for model, spec in MODELS.items():
        if spec.augmented:
            (corpus,) = spec.corpora
            steps.run(f"mix {model}", out / f"{model}-original.jsonl", r1omni(
                "data", "mix", "--manifest", out / f"{corpus}-train.jsonl", "--labels", spec.labels,
                "--out", out / f"{model}-original.jsonl"))
            steps.run(f"augment {model}", out / f"{model}-train.jsonl", r1omni(
                "data", "augment", "--manifest", out / f"{model}-original.jsonl", "--kinds", AUGMENTATIONS,
                "--copies", 1, "--seed", 0, "--out", out / f"{model}-train.jsonl"))
    # Each model's rationales are measured against the terciles of its own training clips.
    for model in MODELS:
        train = out / f"{model}-train.jsonl"
        steps.run(f"describe-voice {model}", out / f"{model}-train-explained.jsonl", r1omni(
            "data", "describe-voice", "--manifest", train, "--out", out / f"{model}-train-explained.jsonl"))


def train_and_evaluate(out: Path, steps: Steps) -> dict:
    """Each model trained, then scored on every corpus's held-out speakers."""
    for frames, base in BASES.items():
        steps.run(f"model-init {base}", out / base, r1omni(
            "model", "init", "--preset", "smol-omni", "--audio-layers", AUDIO_LAYERS,
            *([] if frames else ["--audio-utterance-only"]), "--out", out / base))
    results = {}
    for model, spec in MODELS.items():
        steps.run(f"coldstart {model}", out / model / "final", r1omni(
            "sft", "--config", "configs/speech-coldstart.yaml", f"model.path={out / BASES[spec.frames]}",
            f"data.train={out / f'{model}-train-explained.jsonl'}", f"data.labels={spec.labels}",
            f"train.output_dir={out / model}"))
        for corpus in CORPORA:
            for statistics in scored_statistics(model):
                folder = out / "eval" / f"{model}-on-{corpus}-{statistics}"
                steps.run(f"eval {model} on {corpus} ({statistics})", folder / "metrics.json", r1omni(
                    "eval", "--manifest", out / f"{corpus}-test.jsonl", "--model", out / model / "final",
                    "--standardize", statistics, "--measure", "--max-new-tokens", 64, "--batch-size", 16,
                    "--out", folder))
                results[f"{model} | {corpus} | {statistics}"] = json.loads((folder / "metrics.json").read_text())
    return results


def scored_statistics(model: str) -> tuple[str, ...]:
    """Every model standardises each speaker by their own in training, so that is scored; the
    single-corpus models trained on their own clips alone are also scored with their training
    clips' statistics."""
    spec = MODELS[model]
    return tuple(STATISTICS) if len(spec.corpora) == 1 and not spec.augmented else ("speaker",)


def probes(out: Path, steps: Steps) -> dict:
    """A linear probe per model and scored corpus on the model's own frozen features (the audio
    tower's utterance token: the mean of each clip's frames), fitted on the model's training clips
    with each speaker standardised by their own statistics, as the model trains; the scored clips
    standardised as the model's eval is: each speaker by their own (`speaker`), or by the training
    clips' statistics (`model`)."""
    import numpy as np
    import torch
    from probe_speech_transfer import normalised
    from sklearn.linear_model import LogisticRegression

    from r1omni.data import read_manifest
    from r1omni.eval.metrics import bootstrap_intervals, uar
    from r1omni.labels import lookup
    from r1omni.models import load_policy

    path = out / "probes.json"
    found = json.loads(path.read_text()) if path.is_file() and "probes" in steps.seconds else {}
    todo = [m for m in MODELS if any(f"{m} | {c} | {s}" not in found for c in CORPORA
                                     for s in scored_statistics(m))]
    if not todo:
        return found
    started = time.perf_counter()
    policy = load_policy(out / BASES[False], device="cpu", dtype="float32")  # its one token is the utterance token
    tower = policy.encoders()["audio"]
    tokens: dict[str, np.ndarray] = {}

    def features(rows) -> np.ndarray:  # [rows, D]
        for row in rows:
            if row.id not in tokens:
                with torch.no_grad():
                    media = policy.read_clip(None, row.audio, ("audio",))
                    tokens[row.id] = tower(tower.preprocess(media.audio))[-1].numpy()  # the utterance token
        return np.stack([tokens[r.id] for r in rows])

    def by_speaker(rows) -> np.ndarray:
        return normalised(features(rows), np.array([f"{r.dataset} {r.speaker}" for r in rows]))

    for model in todo:
        fit = read_manifest(out / f"{model}-train.jsonl")
        classifier = LogisticRegression(C=0.01, max_iter=3000, class_weight="balanced")
        classifier.fit(by_speaker(fit), [lookup(r.label) for r in fit])
        raw = features(fit)
        for corpus in CORPORA:
            rows = [r for r in read_manifest(out / f"{corpus}-test.jsonl") if lookup(r.label) in classifier.classes_]
            for statistics in scored_statistics(model):
                x = by_speaker(rows) if statistics == "speaker" else \
                    (features(rows) - raw.mean(0)) / (raw.std(0) + 1e-6)
                truth, predicted = [lookup(r.label) for r in rows], list(classifier.predict(x))
                found[f"{model} | {corpus} | {statistics}"] = {
                    "uar": uar(truth, predicted), "interval": bootstrap_intervals(truth, predicted)["uar"],
                    "n": len(rows), "fit_clips": len(fit)}
    path.write_text(json.dumps(found, indent=2) + "\n")
    steps.record("probes", steps.seconds.get("probes", 0.0) + time.perf_counter() - started)
    return found


def write_table(out: Path, results: dict, probe: dict, seconds: dict, args) -> None:
    lines = ["| model (trained on) | scored on (held-out speakers) | kind | feature statistics | n (dropped) | "
             "UAR [95% CI] | WAR | format | linear probe UAR (same features) |", "|---" * 9 + "|"]
    for name, scores in results.items():
        model, corpus, statistics = name.split(" | ")
        kind = "in-corpus" if corpus in MODELS[model].corpora else "cross-corpus"
        dropped = sum(scores.get("dropped_labels", {}).values())
        lines.append(f"| {model} | {corpus} | {kind} | {STATISTICS[statistics]} | {scores['n']} ({dropped}) | "
                     f"{percent(scores['uar'], scores.get('uar_ci'))} | {percent(scores['war'])} | "
                     f"{percent(scores.get('format_rate'))} | {percent(probe[name]['uar'], probe[name]['interval'])} |")
    speakers = ["", "UAR by held-out speaker (each speaker's own statistics):", "",
                "| model | " + " | ".join(f"{c} {s}" for c, (_, held) in CORPORA.items()
                                         for s in held.split(",")) + " |",
                "|---|" + "---|" * sum(len(h.split(",")) for _, h in CORPORA.values())]
    for model in MODELS:
        cells = []
        for corpus, (_, held) in CORPORA.items():
            groups = results[f"{model} | {corpus} | speaker"].get("by_speaker") or {}
            cells += [percent((groups.get(f"{corpus} {s}") or {}).get("uar")) for s in held.split(",")]
        speakers.append(f"| {model} | " + " | ".join(cells) + " |")
    load = os.getloadavg()[0]
    minutes = {k: round(v / 60, 1) for k, v in seconds.items()}
    lines += speakers + [
        "", f"Held out: Emo-DB speakers {CORPORA['emodb'][1]}, RAVDESS actors {CORPORA['ravdess'][1]}. `both` trains "
        f"on at most {args.per_class} clips of each corpus and class. `emodb-shared` and `ravdess-shared` train on "
        f"the six classes both corpora share, each clip with one copy of a kind drawn from {AUGMENTATIONS} "
        "(r1omni data augment). Cross-corpus scores drop the classes the model never learnt (RAVDESS's calm and "
        "surprise for the Emo-DB models; Emo-DB's boredom for the RAVDESS models). "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load {load:.1f} at the end.",
        "Minutes per step: " + ", ".join(f"{k} {v}" for k, v in minutes.items()) + "."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"results": results, "probes": probe, "seconds": seconds,
                                                  "settings": {"per_class": args.per_class}}, indent=2) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder holding emodb/ and ravdess_speech_actors13-24/")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "real_speech")
    parser.add_argument("--per-class", type=int, default=64,
                        help="the both-corpora model's clips of each corpus and class, at most")
    parser.add_argument("--fresh", action="store_true", help="delete OUT first")
    args = parser.parse_args()
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps(out)
    prepare(out, args.data.resolve(), args, steps)
    results = train_and_evaluate(out, steps)
    write_table(out, results, probes(out, steps), steps.seconds, args)


if __name__ == "__main__":
    main()
