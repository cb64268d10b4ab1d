"""The real-AV recipe's GRPO settings compared on development speakers, never on test speakers.

    python scripts/real_av_grpo_dev.py --out runs/real_av                       # the settings, speakers 12 and 14
    python scripts/real_av_grpo_dev.py --out runs/real_av --variants grpo-lr1e-6 --seeds 1,2
    python scripts/real_av_grpo_dev.py --out runs/real_av --speakers 03,08

Reads OUT (a finished `scripts/real_av_recipe.py` run) and works in OUT/dev-<speakers>. Emo-DB's eight
training speakers are split again: --speakers (by default 12 and 14, the highest-numbered man and
woman, as the test speakers 15 and 16 are) are held out, and a cold start is trained as the recipe's
(same config, same FER faces) on the other six. GRPO then runs from it with each chosen setting of
VARIANTS (and the recipe's setting with --seeds) on the recipe's GRPO rows less the held-out
speakers' copies, and each model and the cold start are scored on the held-out speakers. Writes
OUT/dev-<speakers>/grpo_dev.json: each run's UAR with its interval, per-class recall, the paired
difference to that cold start, and the steps with signal; and OUT/grpo_dev_pooled.json: each
setting's paired differences over every development pair run so far, their mean, and the setting
the recipe takes (the highest mean). No test speaker, test face or CK+ image is read.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from real_av_grpo_seeds import grpo_entry, scores
from real_av_recipe import coldstart_rows, eval_command, eval_folder, stage_command
from recipe_steps import Steps, r1omni

MANIFEST = "dev-test-explained.jsonl"
VARIANTS = {  # folder: (what, config overrides)
    "grpo-lr1e-6": ("lr 1e-6 (the recipe's and the paper's)", ()),
    "grpo-lr3e-6": ("lr 3e-6", ("train.lr=3.0e-6",)),
    "grpo-lr1e-5": ("lr 1e-5 (the recipe's until 2026-12-04)", ("train.lr=1.0e-5",)),
}


def prepare(out: Path, dev: Path, speakers: str, steps: Steps) -> None:
    """The development split, its voice descriptions, and the cold start's and GRPO's rows."""
    steps.run("split", dev / "dev-test.jsonl", r1omni(
        "data", "split", "--manifest", out / "emodb-train.jsonl", "--test-speakers", speakers,
        "--names", "dev-train,dev-test", "--out", dev))
    coldstart_rows(steps, out / "fer-coldstart.jsonl", dev, "dev-train", "dev-test")

    def rl_rows():
        from r1omni.data import read_manifest, write_manifest

        held_out = set(speakers.split(","))
        write_manifest([r for r in read_manifest(out / "rl.jsonl") if r.speaker not in held_out], dev / "rl.jsonl")

    steps.run("mix rl", dev / "rl.jsonl", action=rl_rows)


def entry(dev: Path, stage: str) -> dict:
    """One model's scoring on the development speakers (GRPO's also against the cold start)."""
    metrics = scores(dev, stage, MANIFEST)
    found = {k: metrics[k] for k in ("uar", "uar_ci", "war", "per_class")}
    if stage != "coldstart":
        found |= grpo_entry(dev, stage, MANIFEST)
    return found


def pooled(reports: dict[str, dict], tie: float = 0.005) -> dict:
    """Each setting's paired difference to its cold start on every development pair (`reports`:
    grpo_dev.json by pair), their mean, and the setting the recipe takes by the rule fixed before
    the third pair was run: the highest mean; settings within `tie` of it go to the better worst pair."""
    common = set.intersection(*(set(report["grpo"]) for report in reports.values()))
    settings = {}
    for stage in sorted(common):
        differences = {pair: report["grpo"][stage]["minus_coldstart"]["difference"] for pair, report in reports.items()}
        settings[stage] = {"differences": differences, "mean": sum(differences.values()) / len(differences),
                           "worst": min(differences.values())}
    best = max((v["mean"] for v in settings.values()), default=None)
    near = [stage for stage, v in settings.items() if v["mean"] >= best - tie]
    chosen = max(near, key=lambda stage: settings[stage]["worst"], default=None)  # None: no setting on every pair
    return {"pairs": list(reports), "settings": settings, "chosen": chosen}


def runs(variants: str, seeds: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The GRPO runs asked for: the named VARIANTS, and the recipe's setting with further seeds."""
    unknown = set(variants.split(",")) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"--variants: unknown {', '.join(sorted(unknown))} (known: {', '.join(VARIANTS)})")
    found = {stage: VARIANTS[stage] for stage in variants.split(",")}
    recipe_stage, (recipe_what, recipe_overrides) = next(iter(VARIANTS.items()))
    for seed in filter(None, seeds.split(",")):
        found[f"{recipe_stage}-seed{int(seed)}"] = (f"{recipe_what}, seed {int(seed)}",
                                                     (*recipe_overrides, f"train.seed={int(seed)}"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a finished real_av_recipe.py run")
    parser.add_argument("--speakers", default="12,14", help="Emo-DB training speakers to hold out (comma-separated)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="GRPO settings to run (VARIANTS' folders)")
    parser.add_argument("--seeds", default="", help="further seeds of the recipe's setting (comma-separated)")
    args = parser.parse_args()

    out = args.out.resolve()
    dev = out / f"dev-{args.speakers.replace(',', '-')}"
    dev.mkdir(exist_ok=True)
    steps = Steps(dev)
    prepare(out, dev, args.speakers, steps)
    steps.run("coldstart", dev / "coldstart" / "final",
              stage_command(dev, "coldstart", dev / "coldstart", start=out / "smol-omni"))
    grpo = runs(args.variants, args.seeds)
    for stage, (_, overrides) in grpo.items():
        steps.run(stage, dev / stage / "final", stage_command(dev, "grpo", dev / stage, *overrides))
    for stage in ("coldstart", *grpo):
        steps.run(f"eval {stage}", eval_folder(dev, stage, MANIFEST) / "metrics.json",
                  eval_command(dev, stage, MANIFEST))
    provenance = {"command": "python scripts/real_av_grpo_dev.py " + " ".join(sys.argv[1:]),
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end"}
    report = {"what": f"GRPO settings from a cold start without Emo-DB speakers {args.speakers}, scored on them",
              **provenance,
              "coldstart": entry(dev, "coldstart"),
              "grpo": {stage: {"what": what, "overrides": list(overrides)} | entry(dev, stage)
                       for stage, (what, overrides) in grpo.items()}}
    (dev / "grpo_dev.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"development speakers {args.speakers}: cold start {report['coldstart']['uar']:.1%}; "
          + ", ".join(f"{v['what']} {v['uar']:.1%}" for v in report["grpo"].values()))
    reports = {folder.name.removeprefix("dev-"): json.loads((folder / "grpo_dev.json").read_text())
               for folder in sorted(out.glob("dev-*")) if (folder / "grpo_dev.json").is_file()}
    summary = {"what": "each GRPO setting's paired difference to its cold start on every development pair, "
                       "and the setting the recipe takes", **provenance, **pooled(reports)}
    (out / "grpo_dev_pooled.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"over development pairs {', '.join(summary['pairs'])}: "
          + ", ".join(f"{stage} {v['mean']:+.1%}" for stage, v in summary["settings"].items())
          + f"; the rule takes {summary['chosen'] or 'none (no setting was run on every pair)'}")


if __name__ == "__main__":
    main()
