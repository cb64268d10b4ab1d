"""Run every benchmark, one after another, and collect their JSON lines.

Each benchmark runs its fast path and its baseline in one process; this script only runs them
in turn (each in its own process, so one's memory does not count against the next) and writes
the JSON lines to ``benchmarks/results.json``. Run: ``python benchmarks/run_all.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
# name -> (script, arguments)
BENCHMARKS = {
    "media_decode": ("media_decode", ["--repeats", "5"]),
    "synth": ("synth", ["--clips", "200"]),
    "face_render": ("face_render", ["--clips", "40", "--rounds", "5"]),
    "rollout": ("rollout", ["--repeats", "5"]),
    "grpo_step": ("grpo_step", ["--steps", "5"]),
    "scaling": ("scaling", ["--out", str(HERE / "scaling.png")]),
    "side_by_side": ("side_by_side", ["--steps", "12", "--rounds", "3"]),
    # R1-Omni-0.5B's real widths on this machine's CPU: the rollout (one LM) fits; the GRPO step's
    # three modes at these widths do not fit in 24 GB together (BENCHMARKS.md), it runs on a GPU.
    "rollout_r1omni_0.5b": ("rollout", ["--shapes", "r1omni-0.5b", "--repeats", "3"]),
}
QUICK = {  # smaller runs that show the same comparisons (for a first look, not for the docs)
    "media_decode": ("media_decode", ["--repeats", "1"]),
    "synth": ("synth", ["--clips", "20"]),
    "face_render": ("face_render", ["--clips", "6", "--rounds", "2"]),
    "rollout": ("rollout", ["--repeats", "1", "--prompts", "1"]),
    "grpo_step": ("grpo_step", ["--steps", "1", "--prompts", "1"]),
    "scaling": ("scaling", ["--out", str(HERE / "scaling.png"), "--completion", "16"]),
    "side_by_side": ("side_by_side", ["--steps", "2", "--rounds", "1", "--clips", "8"]),
    "rollout_r1omni_0.5b": ("rollout", ["--shapes", "r1omni-0.5b", "--prompts", "1", "--repeats", "1",
                                         "--new-tokens", "16"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--only", nargs="*", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    settings = QUICK if args.quick else BENCHMARKS
    # --only updates its benchmarks in an existing results file and keeps the others
    collected = json.loads(args.out.read_text()) if args.only and args.out.is_file() else {"results": {}}
    collected["machine"] = {"python": platform.python_version(), "processor": platform.processor(),
                            "system": platform.platform(), "cpus": os.cpu_count()}
    for name in args.only or list(BENCHMARKS):
        print(f"=== {name}", flush=True)
        started = time.perf_counter()
        script, arguments = settings[name]
        run = subprocess.run([sys.executable, str(HERE / f"{script}.py"), *arguments], capture_output=True, text=True)
        print(run.stdout[-4000:], end="")
        if run.returncode:
            print(f"{name} failed ({run.returncode}):\n{run.stderr[-2000:]}")
            collected["results"][name] = {"error": run.stderr[-2000:]}
            continue
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        collected["results"][name] = {**json.loads(lines[-1]), "wall_s": round(time.perf_counter() - started, 1)}
    args.out.write_text(json.dumps(collected, indent=2) + "\n")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
