"""The real-AV recipe's GRPO stage again from the same cold start with other seeds, each scored on
Emo-DB's test speakers: how much of the recipe's GRPO row is its seed.

    python scripts/real_av_grpo_seeds.py --out runs/real_av --seeds 1,2

Reads OUT (a finished `scripts/real_av_recipe.py` run: its cold start, GRPO rows and the seed-0 GRPO
scoring), runs `r1omni grpo` with `train.seed=N` into OUT/grpo-seedN and `r1omni eval` on the test
speakers, and writes OUT/grpo_seeds_emodb.json: each seed's UAR with its interval, per-class recall,
the paired difference to the cold start, and how many GRPO steps had a group whose rewards differed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from real_av_recipe import STAGES, TEST_SPEAKERS, eval_folder
from recipe_steps import Steps, r1omni

MANIFEST = "emodb-test-explained.jsonl"


def steps_with_signal(metrics: Path) -> tuple[int, int]:
    """(steps where at least one group's rewards differed, steps) from a run's metrics.jsonl."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return sum(r["frac_reward_zero_std"] < 1 for r in rows), len(rows)


def seed_entry(out: Path, stage: str, cold) -> dict:
    """One GRPO run's scoring on the test speakers, against the cold start's on the same clips."""
    from r1omni.eval.metrics import paired_difference
    from r1omni.eval.predictions import read_predictions

    folder = eval_folder(out, stage, MANIFEST)
    metrics = json.loads((folder / "metrics.json").read_text())
    found = read_predictions(folder / "predictions.jsonl")
    if found.labels != cold.labels:
        raise SystemExit(f"{folder}: not the cold start's clips")
    signal, steps = steps_with_signal(out / stage / "metrics.jsonl")
    return {"uar": metrics["uar"], "uar_ci": metrics["uar_ci"], "per_class": metrics["per_class"],
            "minus_coldstart": paired_difference(found.labels, found.predictions, cold.predictions)["uar"],
            "steps_with_signal": signal, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a finished real_av_recipe.py run")
    parser.add_argument("--seeds", default="1,2", help="GRPO seeds besides the recipe's 0 (comma-separated)")
    args = parser.parse_args()
    from r1omni.eval.predictions import read_predictions

    out = args.out.resolve()
    command, config, start, rows = STAGES["grpo"]
    steps = Steps(out)
    for seed in [int(s) for s in args.seeds.split(",")]:
        stage = f"grpo-seed{seed}"
        steps.run(stage, out / stage / "final", r1omni(
            command, "--config", config, f"model.path={out / start}", f"data.train={out / rows}",
            f"train.output_dir={out / stage}", f"train.seed={seed}"))
        folder = eval_folder(out, stage, MANIFEST)
        steps.run(f"eval {stage} Emo-DB test speakers", folder / "metrics.json", r1omni(
            "eval", "--manifest", out / MANIFEST, "--model", out / stage / "final", "--max-new-tokens", 64,
            "--batch-size", 16, "--out", folder))
    cold = read_predictions(eval_folder(out, "coldstart", MANIFEST) / "predictions.jsonl")
    coldstart = json.loads((eval_folder(out, "coldstart", MANIFEST) / "metrics.json").read_text())
    seeds = {"0": seed_entry(out, "grpo", cold)}
    seeds |= {s: seed_entry(out, f"grpo-seed{s}", cold) for s in args.seeds.split(",")}
    mean = sum(s["uar"] for s in seeds.values()) / len(seeds)
    report = {"what": f"GRPO ({config}) from one cold start with train.seed 0 (the recipe's) and {args.seeds}, "
                      f"scored on Emo-DB's test speakers {TEST_SPEAKERS}",
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end",
              "coldstart_uar": coldstart["uar"], "mean_uar": mean, "seeds": seeds}
    (out / "grpo_seeds_emodb.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"cold start {coldstart['uar']:.1%}; GRPO by seed: "
          + ", ".join(f"{k} {v['uar']:.1%}" for k, v in seeds.items()) + f"; mean {mean:.1%}")


if __name__ == "__main__":
    main()
