"""The real-speech recipe on Emo-DB, end to end, and its table (README "Real speech: Emo-DB").

    python scripts/emodb_recipe.py --data ../shared/data/emodb

Speaker-independent: speakers 15 and 16 (one male, one female; 127 clips) are held out, the
other eight train. As the paper separates its data, the cold start and GRPO see different
training speakers: the cold start the first four (03, 08, 09, 10: 188 clips with measured
rationales), GRPO the other four (11, 12, 13, 14: 220 clips); label SFT, the labels-only
baseline, all eight. Steps, each an r1omni command: manifest, split, acoustic measurements (the
training clips' terciles, and the test clips measured against them), the smol-omni model, label
SFT, cold start, GRPO with the paper's rewards and GRPO with the faithfulness reward added, then
`r1omni eval` of each model on the held-out speakers with the training corpus's feature
statistics and with their own, scoring the reasoning's stated levels against the measured ones;
and the baseline, eGeMAPS + logistic regression, both ways. A step whose output exists is not run
again (its time comes from OUT/steps.json), so an interrupted run continues; --fresh starts over.
Writes OUT/results.json and OUT/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

from recipe_steps import ROOT, Steps, r1omni

STAGES = {  # name: (command, config, what it starts from, training manifest)
    "label-sft": ("sft", "configs/emodb-label-sft.yaml", "smol-omni", "train.jsonl"),
    "coldstart": ("sft", "configs/emodb-coldstart.yaml", "smol-omni", "coldstart.jsonl"),
    "grpo": ("grpo", "configs/emodb-grpo.yaml", "coldstart/final", "rl.jsonl"),
    "grpo-faithful": ("grpo", "configs/emodb-grpo-faithful.yaml", "coldstart/final", "rl.jsonl"),
}
REASONING = ("coldstart", "grpo", "grpo-faithful")  # the stages whose reasoning is checked
RL_SPEAKERS = "11,12,13,14"  # of the eight training speakers, those GRPO trains on


def train_models(out: Path, data: Path, speakers: str, steps: Steps) -> None:
    steps.run("prepare", out / "all.jsonl", r1omni("data", "prepare", "--dataset", "emodb", "--root", str(data),
                                                   "--out", str(out / "all.jsonl")))
    steps.run("split", out / "test.jsonl", r1omni("data", "split", "--manifest", str(out / "all.jsonl"),
                                                  "--test-speakers", speakers, "--out", str(out)))
    steps.run("describe-voice", out / "train-explained.jsonl",
              r1omni("data", "describe-voice", "--manifest", str(out / "train.jsonl"),
                     "--out", str(out / "train-explained.jsonl")))
    steps.run("describe-test", out / "test-explained.jsonl",
              r1omni("data", "describe-voice", "--manifest", str(out / "test.jsonl"), "--bounds-from",
                     str(out / "train-explained.jsonl"), "--out", str(out / "test-explained.jsonl")))
    steps.run("split-rl", out / "rl.jsonl", r1omni("data", "split", "--manifest", str(out / "train-explained.jsonl"),
                                                   "--test-speakers", RL_SPEAKERS, "--names", "coldstart,rl",
                                                   "--out", str(out)))
    steps.run("model-init", out / "smol-omni", r1omni("model", "init", "--preset", "smol-omni",
                                                      "--out", str(out / "smol-omni")))
    for stage, (command, config, start, train) in STAGES.items():
        steps.run(stage, out / stage / "final", r1omni(
            command, "--config", config, f"model.path={out / start}", f"data.train={out / train}",
            f"train.output_dir={out / stage}"))


def evaluate(out: Path, steps: Steps) -> dict:
    results = {}
    for stage in STAGES:
        for standardize in ("model", "corpus"):
            folder = out / "eval" / f"{stage}-{standardize}"
            steps.run(f"eval {stage} ({standardize})", folder / "metrics.json", r1omni(
                "eval", "--manifest", str(out / "test-explained.jsonl"), "--model", str(out / stage / "final"),
                "--standardize", standardize, "--out", str(folder)))
            metrics = json.loads((folder / "metrics.json").read_text())
            results[f"{stage} ({standardize})"] = {k: metrics[k] for k in ("uar", "war", "format_rate", "n",
                                                                           "cue_faithfulness")}
    return results


def measure(out: Path, steps: Steps):
    """eGeMAPS of the training and test clips: the baseline's features."""
    from r1omni.data import read_manifest
    from r1omni.data.acoustics import measure_rows

    started = time.perf_counter()
    measured = tuple(measure_rows(read_manifest(out / f"{side}.jsonl")) for side in ("train", "test"))
    steps.seconds["baseline"] = round(time.perf_counter() - started, 1)
    return measured


def baseline(train, test, steps: Steps) -> tuple[dict, dict]:
    """eGeMAPS + LR on the split, both standardisations; and, for comparison with the
    literature, leave-one-speaker-out over all ten speakers."""
    import numpy as np

    from r1omni.data.acoustics import Measured
    from r1omni.eval.baseline import STANDARDIZATIONS, egemaps_lr, leave_one_speaker_out

    started = time.perf_counter()
    results = {}
    for standardize in STANDARDIZATIONS:
        scores = egemaps_lr(train, test, standardize)
        results[f"eGeMAPS + LR ({standardize})"] = {k: scores[k] for k in ("uar", "war", "n")}
    everyone = Measured(train.names, train.rows + test.rows, np.concatenate([train.values, test.values]), {})
    loso = leave_one_speaker_out(everyone)
    steps.seconds["baseline"] += round(time.perf_counter() - started, 1)
    return results, loso


def grpo_signal(out: Path) -> dict:
    """Per GRPO stage, from its metrics.jsonl: the mean share of groups whose rewards were all equal
    (no learning signal) and the faithfulness reward by quarter of the run."""
    signal = {}
    for stage in (s for s, (command, *_) in STAGES.items() if command == "grpo"):
        metrics = [json.loads(line) for line in (out / stage / "metrics.jsonl").read_text().splitlines()]
        zero = [m["frac_reward_zero_std"] for m in metrics]
        faith = [m["reward_faithfulness"] for m in metrics if m.get("reward_faithfulness") is not None]
        quarter = max(1, len(faith) // 4)
        signal[stage] = {"frac_reward_zero_std": sum(zero) / len(zero), "steps": len(metrics),
                         "faithfulness_by_quarter": [sum(faith[i : i + quarter]) / len(faith[i : i + quarter])
                                                     for i in range(0, len(faith), quarter)][:4]}
    return signal


def write_table(out: Path, results: dict, seconds: dict, speakers: str, signal: dict, loso: dict) -> None:
    def pct(value):
        return "—" if value is None else f"{value:.1%}"

    def with_interval(value, interval):
        return "—" if value is None else f"{value:.1%} [{interval[0]:.1%}, {interval[1]:.1%}]"

    def minutes(*names):
        return f"{sum(seconds.get(n, 0) for n in names) / 60:.1f}"

    lines = ["| model | statistics | UAR | WAR | format | train time (min) |", "|---|---|---|---|---|---|"]
    for name, scores in results.items():
        model, _, standardize = name.rpartition(" (")
        standardize = {"model)": "training speakers", "train)": "training speakers",
                       "corpus)": "test speakers' own"}[standardize]
        stage = model if model in STAGES else "baseline"
        time_of = {"label-sft": minutes("label-sft"), "coldstart": minutes("coldstart"),
                   "grpo": minutes("coldstart", "grpo"), "grpo-faithful": minutes("coldstart", "grpo-faithful"),
                   "baseline": minutes("baseline")}[stage]
        lines.append(f"| {model} | {standardize} | {pct(scores['uar'])} | {pct(scores['war'])} | "
                     f"{pct(scores.get('format_rate'))} | {time_of} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines += ["", f"Emo-DB, speakers {speakers} held out; n = {next(iter(results.values()))['n']} clips, 7 classes."
              f" Machine: {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, load {load:.1f} at the end. Times: wall-clock minutes of each stage "
              "(GRPO includes its cold start; the baseline measures eGeMAPS of every clip).",
              "", f"For comparison, eGeMAPS + LR leave-one-speaker-out over all ten speakers (n = {loso['n']}): "
              f"UAR {pct(loso['uar'])}, WAR {pct(loso['war'])}."]
    lines += ["", "Reasoning against the measured sound of the test clips (eGeMAPS levels against the training "
              "clips' terciles; training speakers' feature statistics): per attribute, the share of answers that "
              "state it and the agreement of the stated levels with the measured ones, with 95% bootstrap intervals "
              "over clips (chance about 33%).", "",
              "| model | pitch stated | pitch agrees | loudness stated | loudness agrees | variation stated | "
              "variation agrees | tempo stated | tempo agrees |", "|---|---|---|---|---|---|---|---|---|"]
    for stage in REASONING:
        attributes = (results[f"{stage} (model)"]["cue_faithfulness"] or {}).get("per_attribute", {})
        cells = [cell for name in ("pitch", "loudness", "variation", "tempo")
                 for cell in (pct(attributes.get(name, {}).get("stated_rate")),
                              with_interval(attributes.get(name, {}).get("agreement"),
                                            attributes.get(name, {}).get("agreement_ci")))]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines += ["", "GRPO's learning signal: " + "; ".join(
        f"{stage}, {s['steps']} steps, groups whose rewards were all equal {s['frac_reward_zero_std']:.0%} on average"
        + (f", faithfulness reward by quarter {', '.join(f'{v:.2f}' for v in s['faithfulness_by_quarter'])}"
           if s["faithfulness_by_quarter"] else "") for stage, s in signal.items()) + "."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"results": results, "seconds": seconds, "baseline_loso": loso,
                                                  "grpo_signal": signal}, indent=2) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "emodb",
                        help="the Emo-DB folder (holding wav/)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "emodb")
    parser.add_argument("--test-speakers", default="15,16")
    parser.add_argument("--fresh", action="store_true", help="delete OUT first")
    args = parser.parse_args()
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = Steps(args.out)
    train_models(args.out.resolve(), args.data.resolve(), args.test_speakers, steps)
    train, test = measure(args.out, steps)
    baselines, loso = baseline(train, test, steps)
    results = {**baselines, **evaluate(args.out, steps)}
    write_table(args.out, results, steps.seconds, args.test_speakers, grpo_signal(args.out), loso)


if __name__ == "__main__":
    main()
