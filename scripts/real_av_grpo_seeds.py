"""The real-AV recipe's GRPO stage again from the same cold start with other seeds, each scored on
Emo-DB's test speakers: how much of the recipe's GRPO row is its seed.

    python scripts/real_av_grpo_seeds.py --out runs/real_av --seeds 1,2

Reads OUT (a finished `scripts/real_av_recipe.py` run: its cold start, GRPO rows and the seed-0 GRPO
scoring), runs `r1omni grpo` with `train.seed=N` into OUT/grpo-seedN and `r1omni eval` on the test
speakers (their times in OUT/grpo_seeds_steps.json, not the recipe's), and writes
OUT/grpo_seeds_emodb.json: each seed's UAR with its interval, per-class recall, the paired
difference to the cold start, and how many GRPO steps had a group whose rewards differed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from real_av_recipe import TEST_SPEAKERS, against_coldstart, eval_command, eval_folder, stage_command
from recipe_steps import Steps

MANIFEST = "emodb-test-explained.jsonl"


def steps_with_signal(metrics: Path) -> tuple[int, int]:
    """(steps where at least one group's rewards differed, steps) from a run's metrics.jsonl."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return sum(r["frac_reward_zero_std"] < 1 for r in rows), len(rows)


def scores(out: Path, stage: str, manifest: str = MANIFEST) -> dict:
    """`stage`'s scoring on `manifest` (OUT/eval/...)."""
    return json.loads((eval_folder(out, stage, manifest) / "metrics.json").read_text())


def grpo_entry(out: Path, stage: str, manifest: str = MANIFEST) -> dict:
    """One GRPO run's scoring on `manifest`, against the cold start's on the same clips."""
    metrics = scores(out, stage, manifest)
    signal, steps = steps_with_signal(out / stage / "metrics.jsonl")
    return {"uar": metrics["uar"], "uar_ci": metrics["uar_ci"], "per_class": metrics["per_class"],
            "minus_coldstart": against_coldstart(out, stage, manifest)["uar"],
            "steps_with_signal": signal, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a finished real_av_recipe.py run")
    parser.add_argument("--seeds", default="1,2", help="GRPO seeds besides the recipe's 0 (comma-separated)")
    args = parser.parse_args()

    out = args.out.resolve()
    stages = {"0": "grpo"} | {str(int(s)): f"grpo-seed{int(s)}" for s in args.seeds.split(",")}
    steps = Steps(out, "grpo_seeds_steps.json")
    for seed, stage in stages.items():
        if stage == "grpo":  # the recipe's own run
            continue
        steps.run(stage, out / stage / "final", stage_command(out, "grpo", out / stage, f"train.seed={seed}"))
        steps.run(f"eval {stage} Emo-DB test speakers", eval_folder(out, stage, MANIFEST) / "metrics.json",
                  eval_command(out, stage, MANIFEST))
    seeds = {seed: grpo_entry(out, stage) for seed, stage in stages.items()}
    coldstart, mean = scores(out, "coldstart")["uar"], sum(s["uar"] for s in seeds.values()) / len(seeds)
    report = {"what": f"GRPO (configs/real-av-grpo.yaml) from one cold start with train.seed 0 (the recipe's) "
                      f"and {args.seeds}, scored on Emo-DB's test speakers {TEST_SPEAKERS}",
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end",
              "coldstart_uar": coldstart, "mean_uar": mean, "seeds": seeds}
    (out / "grpo_seeds_emodb.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"cold start {coldstart:.1%}; GRPO by seed: "
          + ", ".join(f"{k} {v['uar']:.1%}" for k, v in seeds.items()) + f"; mean {mean:.1%}")


if __name__ == "__main__":
    main()
