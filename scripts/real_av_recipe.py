"""Real faces and real voices in one model, end to end, and its table (README "Real faces and voices").

    python scripts/real_av_recipe.py --data ../shared/data

One smol-omni model (SmolLM2-135M-Instruct, Whisper tiny.en's encoder, and r1omni's own face tower
trained on FER-2013, all towers frozen) learns from FER-2013 training faces (image only) and Emo-DB
speech (speech only; speakers 15 and 16 held out) in the same batches, with the `mixed` prompt
saying which it is given and answers from the union of the two label sets (8 labels). Steps, each
an r1omni command where one exists: manifests; the face tower (`pretrain-face`, best validation
epoch); voice measurements (`describe-voice`); the model; the mix (`data mix`: FER faces capped per
class, a face row's reasoning only saying what is given); cold start (SFT on the mix); GRPO with the
paper's rewards on FER's validation faces (no weights learned them) and augmented copies of the
training speakers' speech (`data augment`: another room or a telephone); `r1omni eval` of both on FER-2013's test
faces, on CK+ (never trained on; contempt dropped and counted), on Emo-DB's test speakers, and
`--ablate` on talking-face clips assembled from CK+ and Emo-DB (r1omni.data.assembled: not
recorded). Beside each score, a linear probe on the model's frozen features (the towers are frozen,
so both stages read the same), fitted on the cold start's training rows. A step whose output
exists is not run again (OUT/steps.json keeps its time); --fresh starts over. Writes
OUT/results.json and OUT/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

from recipe_steps import ROOT, Steps, percent, r1omni

TEST_SPEAKERS = "15,16"
FACE_REASONING = "Only a still picture of the face is given; there is no voice to describe."
STAGES = {"coldstart": ("sft", "configs/real-av-coldstart.yaml", "smol-omni", "coldstart.jsonl"),
          "grpo": ("grpo", "configs/real-av-grpo.yaml", "coldstart/final", "rl.jsonl")}


def prepare(out: Path, data: Path, args, steps: Steps) -> None:
    steps.run("prepare fer2013", out / "fer-all.jsonl", r1omni("data", "prepare", "--dataset", "fer2013", "--root",
                                                               data / "fer2013", "--out", out / "fer-all.jsonl"))
    for split in ("train", "val", "test"):
        steps.run(f"fer {split}", out / f"fer-{split}.jsonl", r1omni(
            "data", "mix", "--manifest", out / "fer-all.jsonl", "--split", split, "--out", out / f"fer-{split}.jsonl"))
    steps.run("fer test scored", out / "fer-test-scored.jsonl", r1omni(
        "data", "mix", "--manifest", out / "fer-test.jsonl", "--per-class", args.test_faces_per_class,
        "--seed", 1, "--out", out / "fer-test-scored.jsonl"))
    steps.run("face tower", out / "face-tower", r1omni("pretrain-face", "--train", out / "fer-train.jsonl", "--val",
                                                       out / "fer-val.jsonl", "--out", out / "face-tower"))
    steps.run("prepare ckplus", out / "ck.jsonl", r1omni("data", "prepare", "--dataset", "ckplus", "--root",
                                                         data / "ckplus48", "--out", out / "ck.jsonl"))
    steps.run("prepare emodb", out / "emodb-all.jsonl", r1omni("data", "prepare", "--dataset", "emodb", "--root",
                                                               data / "emodb", "--out", out / "emodb-all.jsonl"))
    steps.run("split emodb", out / "emodb-test.jsonl", r1omni(
        "data", "split", "--manifest", out / "emodb-all.jsonl", "--test-speakers", TEST_SPEAKERS,
        "--names", "emodb-train,emodb-test", "--out", out))
    # The cold start's FER faces (capped per class) and the eight training speakers.
    steps.run("fer coldstart", out / "fer-coldstart.jsonl", r1omni(
        "data", "mix", "--manifest", out / "fer-train.jsonl", "--per-class", args.faces_per_class, "--seed", 0,
        "--out", out / "fer-coldstart.jsonl"))
    coldstart_rows(steps, out / "fer-coldstart.jsonl", out, "emodb-train", "emodb-test")
    # GRPO needs rows whose answers still vary: the tower learned every FER training face and the cold
    # start every training utterance, so GRPO reads validation faces and the training speakers'
    # speech through another room or a telephone (docs/real_faces.md, "Groups with a signal").
    steps.run("fer rl", out / "fer-rl.jsonl", r1omni(
        "data", "mix", "--manifest", out / "fer-val.jsonl", "--per-class", args.faces_per_class, "--seed", 0,
        "--fill-rationale", FACE_REASONING, "--out", out / "fer-rl.jsonl"))
    steps.run("augment emodb", out / "emodb-train-augmented.jsonl", r1omni(
        "data", "augment", "--manifest", out / "emodb-train.jsonl", "--kinds", "channel,codec", "--seed", 0,
        "--out", out / "emodb-train-augmented.jsonl"))
    steps.run("mix rl", out / "rl.jsonl", action=lambda: rl_rows(out))

    def assemble():
        """Assemble talking-face clips from CK+ and Emo-DB test speakers (not recorded)."""
        from r1omni.data import read_manifest
        from r1omni.data.assembled import assemble_talking_faces

        assemble_talking_faces(read_manifest(out / "ck.jsonl"), read_manifest(out / "emodb-test.jsonl"),
                               out / "talking-faces", per_emotion=args.talking_faces_per_emotion)

    steps.run("assemble talking faces", out / "talking-faces", action=assemble)
    steps.run("prepare talking faces", out / "talking-faces.jsonl", r1omni(
        "data", "prepare", "--dataset", "ravdess", "--root", out / "talking-faces",
        "--out", out / "talking-faces.jsonl"))


def coldstart_rows(steps: Steps, faces: Path, folder: Path, train: str, test: str) -> None:
    """FOLDER/`train`.jsonl's and FOLDER/`test`.jsonl's voices described (the test's levels bounded by
    the training speakers') into FOLDER/<name>-explained.jsonl, and the cold start's rows, `faces`
    and the described training voices, into FOLDER/coldstart.jsonl."""
    steps.run("describe-voice", folder / f"{train}-explained.jsonl", r1omni(
        "data", "describe-voice", "--manifest", folder / f"{train}.jsonl",
        "--out", folder / f"{train}-explained.jsonl"))
    steps.run("describe-test", folder / f"{test}-explained.jsonl", r1omni(
        "data", "describe-voice", "--manifest", folder / f"{test}.jsonl", "--bounds-from",
        folder / f"{train}-explained.jsonl", "--out", folder / f"{test}-explained.jsonl"))
    steps.run("mix coldstart", folder / "coldstart.jsonl", r1omni(
        "data", "mix", "--manifest", faces, "--manifest", folder / f"{train}-explained.jsonl",
        "--fill-rationale", FACE_REASONING, "--out", folder / "coldstart.jsonl"))


def rl_rows(out: Path) -> None:
    """GRPO's rows: the validation faces and the augmented copies of the training speakers' speech
    (the originals, which the cold start learned, left out)."""
    from r1omni.data import read_manifest, write_manifest

    copies = [r for r in read_manifest(out / "emodb-train-augmented.jsonl") if (r.meta or {}).get("augmented_from")]
    write_manifest(read_manifest(out / "fer-rl.jsonl") + copies, out / "rl.jsonl")


def train(out: Path, args, steps: Steps) -> None:
    steps.run("model-init", out / "smol-omni", r1omni("model", "init", "--preset", "smol-omni", "--vision",
                                                      out / "face-tower", "--out", out / "smol-omni"))
    for stage, (command, *_) in STAGES.items():
        extra = [f"train.max_steps={args.grpo_steps}"] if command == "grpo" else []
        steps.run(stage, out / stage / "final", stage_command(out, stage, out / stage, *extra))


def stage_command(out: Path, stage: str, output: Path, *overrides: str, start: Path | None = None) -> list[str]:
    """The r1omni command training `stage` (a key of STAGES) on OUT's rows into `output`, from OUT's
    start for it unless `start` is given."""
    command, config, usual_start, rows = STAGES[stage]
    return r1omni(command, "--config", config, f"model.path={start or out / usual_start}",
                  f"data.train={out / rows}", f"train.output_dir={output}", *overrides)


TESTS = {  # name: (manifest, further eval options)
    "FER-2013 test": ("fer-test-scored.jsonl", ()),
    "CK+ (all subjects)": ("ck.jsonl", ()),
    "Emo-DB test speakers": ("emodb-test-explained.jsonl", ()),
    "talking faces (assembled)": ("talking-faces.jsonl", ("--ablate",)),
}


def eval_folder(out: Path, stage: str, manifest: str) -> Path:
    return out / "eval" / f"{stage}-{manifest.split('.')[0]}"


def eval_command(out: Path, stage: str, manifest: str, *extra: str) -> list[str]:
    """The r1omni command scoring OUT/`stage`/final on OUT/`manifest` into its eval folder."""
    return r1omni("eval", "--manifest", out / manifest, "--model", out / stage / "final", "--max-new-tokens", 64,
                  "--batch-size", 16, "--out", eval_folder(out, stage, manifest), *extra)


def evaluate(out: Path, steps: Steps, stages: list[str]) -> dict:
    results = {}
    for stage in stages:
        for test, (manifest, extra) in TESTS.items():
            folder = eval_folder(out, stage, manifest)
            steps.run(f"eval {stage} {test}", folder / "metrics.json", eval_command(out, stage, manifest, *extra))
            results[f"{stage} | {test}"] = json.loads((folder / "metrics.json").read_text())
    return results


def grpo_against_coldstart(out: Path, stages: list[str]) -> dict:
    """GRPO minus the cold start on each single-setting test set."""
    if not {"coldstart", "grpo"} <= set(stages):
        return {}
    return {test: against_coldstart(out, "grpo", manifest)
            for test, (manifest, extra) in TESTS.items() if "--ablate" not in extra}


def against_coldstart(out: Path, stage: str, manifest: str) -> dict:
    """`stage` minus the cold start on `manifest`, with a paired bootstrap interval (both scored on
    the same clips, in the same order)."""
    from r1omni.eval.metrics import paired_difference
    from r1omni.eval.predictions import read_predictions

    found, cold = (read_predictions(eval_folder(out, s, manifest) / "predictions.jsonl") for s in (stage, "coldstart"))
    if found.labels != cold.labels:
        raise SystemExit(f"{manifest}: {stage}'s and the cold start's predictions are not of the same clips")
    return paired_difference(found.labels, found.predictions, cold.predictions)


def pooled_modality(policy, rows, modality: str):
    """Each row's `modality` tower tokens averaged: ``[rows, width]`` (what the projector reads, before it)."""
    import numpy as np
    import torch

    tower = policy.encoders()[modality]
    with torch.no_grad():
        return np.stack([tower(tower.preprocess(policy.read_clip(r.video, r.audio, (modality,)).get(modality)))
                         .mean(0).numpy() for r in rows])


def probes(out: Path, steps: Steps) -> dict:
    """Linear probes on the cold-start model's own frozen features (each clip's tokens averaged),
    fitted on the rows the model trained on."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from r1omni.data import read_manifest
    from r1omni.eval.metrics import bootstrap_intervals, uar
    from r1omni.labels import lookup
    from r1omni.models import load_policy

    path = out / "probes.json"
    if path.is_file() and "probes" in steps.seconds:
        return json.loads(path.read_text())
    started = time.perf_counter()
    policy = load_policy(out / "coldstart" / "final", device="cpu", dtype="float32")
    fit = read_manifest(out / "coldstart.jsonl")
    found = {}
    for modality, test_manifests in (("video", ("fer-test-scored.jsonl", "ck.jsonl")),
                                     ("audio", ("emodb-test-explained.jsonl",))):
        fit_rows = [r for r in fit if getattr(r, modality)]
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced"))
        model.fit(pooled_modality(policy, fit_rows, modality), [r.label for r in fit_rows])
        for manifest in test_manifests:
            rows = [r for r in read_manifest(out / manifest) if lookup(r.label) in model.classes_]
            labels = [lookup(r.label) for r in rows]
            predicted = list(model.predict(pooled_modality(policy, rows, modality)))
            found[manifest] = {"uar": uar(labels, predicted), "interval": bootstrap_intervals(labels, predicted)["uar"],
                               "n": len(rows), "fit_rows": len(fit_rows)}
    path.write_text(json.dumps(found, indent=2) + "\n")
    steps.record("probes", time.perf_counter() - started)
    return found


def write_table(out: Path, results: dict, probe: dict, paired: dict, seconds: dict, args) -> None:
    lines = ["| model | test set | n | UAR [95% CI] | WAR | format | linear probe UAR (same frozen features, cold "
             "start's rows) | face found |",
             "|---|---|---|---|---|---|---|---|"]
    for name, metrics in results.items():
        stage, test = name.split(" | ")
        manifest = TESTS[test][0]
        for setting, scores in (metrics.items() if "uar" not in metrics else [("", metrics)]):
            faces = scores.get("faces")
            face_cell = f"{faces['clips_with_face']}/{faces['clips']}" if faces else "—"
            probe_cell = percent(probe[manifest]["uar"], probe[manifest]["interval"]) if manifest in probe and \
                not setting else "—"
            dropped = sum(scores.get("dropped_labels", {}).values())
            label = test + (f", {setting}" if setting else "") + (f" ({dropped} dropped)" if dropped else "")
            lines.append(f"| {stage} | {label} | {scores['n']} | {percent(scores['uar'], scores.get('uar_ci'))} | "
                         f"{percent(scores['war'])} | {percent(scores.get('format_rate'))} | {probe_cell} | "
                         f"{face_cell} |")
    if paired:
        lines += ["", "GRPO minus the cold start, UAR points [95% paired bootstrap interval]: " + ", ".join(
            f"{test} {100 * d['uar']['difference']:+.1f} [{100 * d['uar']['interval'][0]:+.1f}, "
            f"{100 * d['uar']['interval'][1]:+.1f}]" for test, d in paired.items()) + "."]
    load = os.getloadavg()[0]
    minutes = {k: round(v / 60, 1) for k, v in seconds.items()}
    lines += ["", f"FER-2013 test: {args.test_faces_per_class} faces per class drawn by seed 1 (disgust has 55). "
              f"CK+: all 118 subjects, never trained on; contempt dropped (FER-2013 and Emo-DB have no such "
              f"class). Emo-DB: speakers {TEST_SPEAKERS}. Talking faces: CK+ sequences muxed with Emo-DB test "
              "speakers' speech of the same emotion, assembled, not recorded (r1omni.data.assembled).",
              f"Training: {args.faces_per_class} FER faces per class + Emo-DB's 8 training speakers (cold start, "
              f"one epoch); for GRPO ({args.grpo_steps} steps), {args.faces_per_class} FER validation faces per class "
              "+ one augmented copy (room or telephone) of each training utterance. "
              f"Machine: {platform.machine()}, {os.cpu_count()} cores, load {load:.1f} at the end.",
              f"Minutes per step ({sum(seconds.values()) / 60:.1f} in all): "
              + ", ".join(f"{k} {v}" for k, v in minutes.items()) + "."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"results": results, "probes": probe,
                                                  "grpo_minus_coldstart": paired, "seconds": seconds,
                                                  "settings": vars(args) | {"data": str(args.data),
                                                                            "out": str(args.out)}},
                                                 indent=2) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder holding fer2013/, ckplus48/ and emodb/")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "real_av")
    parser.add_argument("--faces-per-class", type=int, default=100, help="FER faces per class for each stage")
    parser.add_argument("--test-faces-per-class", type=int, default=100, help="FER-2013 test faces scored per class")
    parser.add_argument("--grpo-steps", type=int, default=20)
    parser.add_argument("--talking-faces-per-emotion", type=int, default=10)
    parser.add_argument("--evaluate", default=",".join(STAGES), help="the stages to score (default: all)")
    parser.add_argument("--fresh", action="store_true", help="delete OUT first")
    args = parser.parse_args()
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps(out)
    prepare(out, args.data.resolve(), args, steps)
    train(out, args, steps)
    probe = probes(out, steps)
    stages = [stage.strip() for stage in args.evaluate.split(",") if stage.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"--evaluate: unknown stages {unknown}; the stages are {', '.join(STAGES)}")
    results = evaluate(out, steps, stages)
    write_table(out, results, probe, grpo_against_coldstart(out, stages), steps.seconds, args)


if __name__ == "__main__":
    main()
