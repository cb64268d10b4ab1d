"""Crash test: `kill -9` training, `predict` and `eval` at random moments, resume each, and
compare with an uninterrupted run.

    python scripts/crash_test.py            # 20 training kills, 5 each of predict and eval
    python scripts/crash_test.py --train-kills 1 --predict-kills 1 --eval-kills 1   # CI's size

Training: a tiny SFT run (a nano model built from its preset, synthetic clips) saving a
checkpoint every step; each trial starts it and kills it (SIGKILL): every other trial at a random
moment of an uninterrupted run's steps (timed from when it writes config.yaml, after loading),
the others inside a random checkpoint save (0-20 ms after its temporary folder appears); then
it resumes from the newest checkpoint (or starts again when there is none) to the end. The final weights
must be bitwise equal to the uninterrupted run's, every time. A kill that lands inside a
checkpoint save is recognised by the temporary folder it leaves, and counted. `predict --out` and
`eval --out --ablate` are killed the same way (from their start) and rerun with `--resume`: their
outputs must equal an uninterrupted run's (the same rows, none twice).
Prints a line per trial and writes the figures as JSON (--out); exit status 0 when all hold.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from r1omni.data.synth import WorldConfig, write_world

CLI = [sys.executable, "-m", "r1omni.cli"]


def run(args: list[str], cwd: Path) -> float:
    """Seconds an r1omni command takes to the end; it must succeed."""
    started = time.monotonic()
    done = subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"r1omni {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def killed_at(args: list[str], cwd: Path, seconds: float, started: Path | None = None) -> bool:
    """Start an r1omni command and SIGKILL it `seconds` after it starts, or after `started`
    appears (a file the command writes when its real work begins: the clock then skips the
    seconds of imports and model loading); False when it ended first."""
    process = subprocess.Popen(CLI + args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while started is not None and not started.exists() and process.poll() is None:
        time.sleep(0.01)
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return True


def killed_inside_a_save(args: list[str], cwd: Path, out: Path, rng: random.Random) -> bool:
    """Start a training command and SIGKILL it while it writes a checkpoint: once a temporary
    checkpoint folder appears, after a random 0-20 ms; False when it ended first."""
    process = subprocess.Popen(CLI + args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saves = int(rng.uniform(0, 6))  # which of the six saves to interrupt
    seen: set[str] = set()
    while process.poll() is None:
        writing = {p.name for p in out.glob(".checkpoint-*")} - seen
        if writing and len(seen) >= saves:
            time.sleep(rng.uniform(0, 0.02))
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        seen |= writing
        time.sleep(0.0005)
    return False


def training_seconds(args: list[str], cwd: Path, started: Path) -> tuple[float, float]:
    """(whole run, the part after `started` appears) of an uninterrupted run, in seconds."""
    begin = time.monotonic()
    process = subprocess.Popen(CLI + args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not started.exists() and process.poll() is None:
        time.sleep(0.01)
    middle = time.monotonic()
    _, errors = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"r1omni {' '.join(args)} failed:\n{errors[-3000:]}")
    return time.monotonic() - begin, time.monotonic() - middle


def newest_checkpoint(out: Path) -> Path | None:
    found = [p for p in out.glob("checkpoint-*") if p.name.split("-", 1)[1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-", 1)[1]), default=None)


def training_trials(work: Path, kills: int, rng: random.Random) -> tuple[list[dict], float]:
    settings = [f"model.path={work / 'nano'}", f"data.train={work / 'world' / 'coldstart.jsonl'}",
                "train.max_steps=6", "train.save_every=1", "train.batch_size=4", "train.micro_batch_size=2",
                "train.lr=1e-3", "train.scheduler=cosine", "train.warmup_ratio=0.2", "model.feature_cache=none"]
    whole, training = training_seconds(["sft", *settings, f"train.output_dir={work / 'train_whole'}"], work,
                                       work / "train_whole" / "config.yaml")
    reference = (work / "train_whole" / "final" / "model.safetensors").read_bytes()
    trials = []
    for trial in range(kills):
        out = work / f"train_{trial}"
        command = ["sft", *settings, f"train.output_dir={out}"]
        if trial % 2:  # a random moment of the steps (in a step, or now and then in a save)
            moment = rng.uniform(0, training)
            killed = killed_at(command, work, moment, out / "config.yaml")
        else:  # aimed at a checkpoint save
            moment, killed = None, killed_inside_a_save(command, work, out, rng)
        in_save = any(out.glob(".checkpoint-*")) or any(out.glob(".final*"))
        resumed_from = newest_checkpoint(out) if out.is_dir() else None
        resume = ["--resume", str(resumed_from)] if resumed_from else []
        run(["sft", *settings, f"train.output_dir={out}", *resume], work)
        final = out / "final" / "model.safetensors"
        steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
        trials.append({"kind": "train", "kill_s": moment and round(moment, 2), "aimed_at_a_save": moment is None,
                       "killed": killed, "inside_save": in_save,
                       "resumed_from": resumed_from.name if resumed_from else None,
                       "equal": final.read_bytes() == reference, "steps_logged_once": steps == sorted(set(steps))})
        print(json.dumps(trials[-1]), flush=True)
    return trials, whole


def output_trials(work: Path, kind: str, kills: int, rng: random.Random) -> tuple[list[dict], float]:
    """`predict` into a file or `eval` into a folder, killed and resumed."""
    clips = sorted(str(p) for p in (work / "world" / "clips").rglob("*.mp4"))
    common = ["--model", str(work / "nano"), "--max-new-tokens", "8", "--batch-size", "2"]
    if kind == "predict":
        def command(out):
            return ["predict", *clips, *common, "--out", str(out)]

        def outputs(out):
            return {"predictions": out.read_text()}
        name = "p.jsonl"
    else:
        def command(out):
            return ["eval", "--manifest", str(work / "world" / "coldstart.jsonl"), *common, "--labels", "dfew",
                    "--ablate", "--out", str(out)]

        def outputs(out):
            return {p.name: p.read_text() for p in sorted(out.iterdir()) if p.suffix in (".jsonl", ".json", ".md")}
        name = "eval"
    whole = run(command(work / f"{kind}_whole_{name}"), work)
    reference = outputs(work / f"{kind}_whole_{name}")
    trials = []
    for trial in range(kills):
        out = work / f"{kind}_{trial}_{name}"
        moment = rng.uniform(0, whole)
        killed = killed_at(command(out), work, moment)
        partial = any(out.parent.glob(f"{out.name}.partial")) or (out.is_dir() and any(out.glob("*.partial")))
        run(command(out) + ["--resume"], work)
        trials.append({"kind": kind, "kill_s": round(moment, 2), "killed": killed, "partial_left": partial,
                       "equal": outputs(out) == reference})
        print(json.dumps(trials[-1]), flush=True)
    return trials, whole


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-kills", type=int, default=20)
    parser.add_argument("--predict-kills", type=int, default=5)
    parser.add_argument("--eval-kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="of the kill moments")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="r1omni-crash-"))
    print(f"building a model and clips in {work}", flush=True)
    write_world(WorldConfig(sizes={"coldstart": 12}), work / "world", splits=("coldstart",))
    run(["model", "init", "--preset", "nano", "--out", str(work / "nano")], work)
    trials, seconds = [], {}
    if args.train_kills:
        found, seconds["train"] = training_trials(work, args.train_kills, rng)
        trials += found
    for kind, kills in (("predict", args.predict_kills), ("eval", args.eval_kills)):
        if kills:
            found, seconds[kind] = output_trials(work, kind, kills, rng)
            trials += found
    held = all(t["equal"] and t.get("steps_logged_once", True) for t in trials)
    summary = {kind: {"trials": sum(t["kind"] == kind for t in trials),
                      "killed": sum(t["killed"] for t in trials if t["kind"] == kind),
                      "inside_save": sum(t.get("inside_save", False) for t in trials if t["kind"] == kind),
                      "equal": sum(t["equal"] for t in trials if t["kind"] == kind),
                      "uninterrupted_s": round(seconds[kind], 1)} for kind in seconds}
    report = {"summary": summary, "trials": trials, "seed": args.seed, "cpu_count": os.cpu_count(),
              "load_average": os.getloadavg(), "all_equal": held}
    for kind, row in summary.items():
        print(f"{kind}: {row['equal']} of {row['trials']} resumed runs equal to the uninterrupted one "
              f"({row['killed']} killed before the end, {row['inside_save']} inside a checkpoint save; "
              f"uninterrupted {row['uninterrupted_s']} s)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
