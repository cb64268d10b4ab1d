"""Demo stages side by side: two GRPO runs in two one-thread processes, against the same two runs
one after the other with both cores (what `r1omni demo --workers 2` does against `--workers 1`).

A nano model's products are small: on two cores a GRPO step is far from twice as fast as on one,
so two independent stages (the demo's two GRPO rows, or its cold start and label SFT) finish
sooner side by side. The baseline runs the paper's GRPO and the faithfulness GRPO one after the
other, each `r1omni grpo` process with two threads; the fast path runs them at once, one thread
each. Both train from the shipped nano base on the same synthetic clips with the same settings
(the demo's: 4 prompts x 8 completions, 96 tokens), their feature cache filled beforehand; the
rounds alternate which mode goes first. Run: ``python benchmarks/side_by_side.py [--steps 12 --rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REWARDS = {"paper": "{accuracy: 1.0, format: 1.0}", "faithful": "{accuracy: 1.0, format: 1.0, faithfulness: 1.0}"}


def grpo_command(name: str, world: Path, features: Path, out: Path, args: argparse.Namespace) -> list[str]:
    from r1omni.models.presets import NANO_BASE

    batch = args.prompts * args.G
    return [sys.executable, "-m", "r1omni.cli", "grpo", f"model.path={NANO_BASE}", f"data.train={world / 'rl.jsonl'}",
            f"train.output_dir={out / name}", f"train.max_steps={args.steps}", "grpo.preset=r1omni", "train.lr=1e-5",
            f"grpo.num_generations={args.G}", f"train.batch_size={batch}", f"train.micro_batch_size={batch}",
            f"grpo.max_completion_length={args.tokens}", f"model.feature_cache={features}", "train.scheduler=constant",
            f"grpo.reward_weights={REWARDS[name]}"]


def run(commands: list[list[str]], threads: int, together: bool) -> float:
    """Wall seconds to run `commands` at once (`together`) or one after the other, `threads` each."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    begin = time.perf_counter()
    if together:
        running = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands]
        failed = [p.stderr.read().decode()[-2000:] for p in running if p.wait() != 0]
    else:
        failed = [done.stderr.decode()[-2000:] for c in commands
                  if (done := subprocess.run(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)).returncode]
    if failed:
        raise SystemExit(f"a GRPO run failed:\n{failed[0]}")
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="GRPO steps per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clips", type=int, default=32, help="RL clips of the synthetic world")
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step (the demo's 4)")
    parser.add_argument("--G", type=int, default=8, help="completions per prompt (the demo's 8)")
    parser.add_argument("--tokens", type=int, default=96, help="completion length (the demo's 96)")
    args = parser.parse_args()
    from r1omni.data import read_manifest
    from r1omni.data.synth import WorldConfig, write_world
    from r1omni.models import FeatureCache, load_policy
    from r1omni.models.cache import fill_cache
    from r1omni.models.presets import NANO_BASE

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as tmp:
        world, features = Path(tmp) / "world", Path(tmp) / "features"
        write_world(WorldConfig(seed=11, sizes={"rl": args.clips}), world, ["rl"], workers=cores)
        fill_cache(load_policy(NANO_BASE, device="cpu", dtype="float32"), read_manifest(world / "rl.jsonl"),
                   FeatureCache(features))
        seconds: dict[str, list[float]] = {"one_after_the_other": [], "side_by_side": []}
        for round_ in range(args.rounds):
            modes = list(seconds) if round_ % 2 == 0 else list(reversed(seconds))
            for mode in modes:
                commands = [grpo_command(name, world, features, Path(tmp) / f"{mode}-{round_}", args)
                            for name in REWARDS]
                together = mode == "side_by_side"
                seconds[mode].append(run(commands, 1 if together else cores, together))
                print(f"round {round_ + 1}: {mode} {seconds[mode][-1]:.1f} s", flush=True)
    medians = {mode: statistics.median(values) for mode, values in seconds.items()}
    result = {"benchmark": "side_by_side", "steps": args.steps, "rounds": args.rounds, "cores": cores,
              "prompts": args.prompts, "G": args.G, "tokens": args.tokens,
              "seconds": seconds, "median_seconds": medians,
              "speedup": medians["one_after_the_other"] / medians["side_by_side"],
              "load_average_at_start": load}
    print(f"two GRPO runs of {args.steps} steps: one after the other {medians['one_after_the_other']:.1f} s, "
          f"side by side {medians['side_by_side']:.1f} s, {result['speedup']:.2f}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
