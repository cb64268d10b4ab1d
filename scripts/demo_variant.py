"""Try a change to the demo's plan on a development world: the cold start, then GRPO from it.

    python scripts/demo_variant.py --world runs/dev7 --name long-cold steps.cold_start=300
    python scripts/demo_variant.py --world runs/dev7 --name hot --from runs/dev7-long-cold grpo:grpo.temperature=0.7
    python scripts/demo_variant.py --world runs/dev7 --name faith-lr --from runs/dev7 --only grpo_faithful \
        lr.grpo_faithful=5e-5

`--world DIR` holds a world written by `r1omni demo --seed S --out DIR` (use a seed whose test
sets are never reported: the demo reports 0, 1 and 2) and its feature cache. Plan fields are set
as `steps.STAGE=N`, `lr.STAGE=X` or `FIELD=N`; `sft:KEY=VALUE` / `grpo:KEY=VALUE` override a
stage's run config. `--from DIR` reuses another variant's cold start. Results go to
`WORLD-NAME/variant.json` and are printed; docs/rlvr_findings.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

from r1omni import demo
from r1omni.train.config import load_config, save_config
from r1omni.train.stages import train


def variant_plan(items: list[str]) -> tuple[demo.DemoPlan, list[str]]:
    """The default plan with `items` applied, and the stage overrides among them."""
    plan, overrides = demo.PLANS["default"], []
    for item in items:
        if item.startswith(("sft:", "grpo:")):
            overrides.append(item)
            continue
        key, value = item.split("=", 1)
        if key.startswith("steps."):
            plan = replace(plan, steps={**plan.steps, key[6:]: int(value)})
        elif key.startswith("lr."):
            plan = replace(plan, lr={**plan.lr, key[3:]: float(value)})
        else:
            plan = replace(plan, **{key: int(value)})
    return plan, overrides


def stage_config(stage, plan, out: Path, world: Path, seed: int, overrides: list[str]):
    config = demo.stage_config(stage, plan, out, world, seed)
    extra = [item.split(":", 1)[1] for item in overrides if item.startswith(stage.kind + ":")]
    if not extra:
        return config
    path = save_config(config, out / f"{stage.name}.yaml")
    return load_config(path, extra, kind=stage.kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, required=True, help="a demo output folder (world/, features/)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--from", dest="start", type=Path, help="reuse this variant's cold start")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", choices=[s.name for s in demo.STAGES if s.kind],
                        help="train and score this stage alone (a GRPO stage starts from --from's cold start)")
    parser.add_argument("items", nargs="*")
    args = parser.parse_args()
    plan, overrides = variant_plan(args.items)
    out = args.world.with_name(f"{args.world.name}-{args.name}")
    out.mkdir(parents=True, exist_ok=True)
    for part in ("world", "features"):
        if not (out / part).exists():
            (out / part).symlink_to((args.world / part).resolve())
    stages = {s.name: s for s in demo.STAGES}
    todo = ["cold_start", "grpo"]
    if args.start is not None:
        shutil.rmtree(out / "cold_start", ignore_errors=True)
        shutil.copytree(args.start / "cold_start" / "final", out / "cold_start" / "final")
        todo = ["grpo"]
    if args.only:
        todo = [args.only]
    results = {"plan": repr(plan), "overrides": overrides}
    for name in todo:
        started = time.perf_counter()
        config = stage_config(stages[name], plan, out, out / "world", args.seed, overrides)
        train(config)
        scores, _ = demo.score_stage(name, out, out / "world", plan)
        results[name] = {key: {m: scores[key][m] for m in ("uar", "war", "format_rate", "conflict_war", "cue_precision",
                                                          "cue_recall", "wrong_modality_rate")}
                         for key in scores}
        results[name]["train_seconds"] = round(time.perf_counter() - started)
        print(name, json.dumps(results[name]), flush=True)
    (out / "variant.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
