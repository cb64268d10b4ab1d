"""Face rendering speed: the renderer against an earlier version of itself, on the same clips.

The synthetic world renders every frame of every clip it writes (2-5 s at 10 fps), and that was
about two thirds of the time to write a clip. The baseline is `r1omni/data/synth/face.py` as it
was at a git revision (default 79dd394: every feature evaluated over the whole face's box, each
layer blended through a gather of its covered pixels); the fast path is the installed renderer
(each feature evaluated only inside the bounds it can cover). Both render the same clips' full
frame sequences, alternating which goes first each round, one process, one core; the frames must
be identical, byte for byte. Run: ``python benchmarks/face_render.py [--clips 40 --rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

import r1omni.data.synth.world as world_module
from r1omni.data.synth import SynthWorld, WorldConfig
from r1omni.data.synth import face as current

ROOT = Path(__file__).resolve().parents[1]
FACE_PATH = "r1omni/data/synth/face.py"


def renderer_at(revision: str) -> types.ModuleType:
    """The face module as it was at `revision`, loaded from git under its own name."""
    try:
        source = subprocess.run(["git", "show", f"{revision}:{FACE_PATH}"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(f"cannot read {FACE_PATH} at {revision} from git in {ROOT}: {error}") from error
    module = types.ModuleType(f"face_at_{revision}")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{revision}:{FACE_PATH}", "exec"), module.__dict__)  # noqa: S102
    return module


def render_all(world: SynthWorld, clips, render_faces) -> tuple[float, list[np.ndarray]]:
    """Seconds to render every frame of `clips` with `render_faces`, and the frames."""
    world_module.render_faces = render_faces  # what SynthWorld.render_frames calls
    begin = time.perf_counter()
    frames = [world.render_frames(clip, np.arange(clip.frame_count)) for clip in clips]
    return time.perf_counter() - begin, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=40, help="clips per round, half in and half out of domain")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default="79dd394", help="git revision of the baseline renderer")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core: a world writer's share
    baseline = renderer_at(args.baseline)
    world = SynthWorld(WorldConfig(seed=0))
    half = args.clips // 2
    clips = [world.clip("rl", i) for i in range(args.clips - half)] + [world.clip("ood_test", i) for i in range(half)]
    frame_count = sum(clip.frame_count for clip in clips)
    render_all(world, clips[:2], current.render_faces)  # identity pools and caches outside the timing

    seconds = {"baseline": [], "r1omni": []}
    identical = True
    for round_ in range(args.rounds):
        order = ("baseline", "r1omni") if round_ % 2 == 0 else ("r1omni", "baseline")
        frames = {}
        for name in order:
            renderer = baseline.render_faces if name == "baseline" else current.render_faces
            elapsed, frames[name] = render_all(world, clips, renderer)
            seconds[name].append(elapsed)
        identical &= all(np.array_equal(a, b) for a, b in zip(frames["baseline"], frames["r1omni"]))
    world_module.render_faces = current.render_faces

    ms = {name: [s / len(clips) * 1000 for s in times] for name, times in seconds.items()}
    median = {name: statistics.median(values) for name, values in ms.items()}
    load = os.getloadavg()
    print(f"{len(clips)} clips, {frame_count} frames at 112x112, {args.rounds} rounds interleaved, one core; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'renderer':<22}{'ms/clip':>9}{'range':>16}")
    for name, label in (("baseline", f"baseline ({args.baseline})"), ("r1omni", "r1omni")):
        print(f"{label:<22}{median[name]:>9.1f}{min(ms[name]):>8.1f}-{max(ms[name]):<7.1f}")
    ratio = median["baseline"] / median["r1omni"]
    print(f"ratio {ratio:.2f}x; frames identical: {identical}")
    print(json.dumps({"benchmark": "face_render", "clips": len(clips), "frames": frame_count,
                      "baseline": args.baseline, "ms_per_clip": ms, "ratio": ratio, "identical": identical,
                      "load_average": load}))
    if not identical:
        raise SystemExit("the renderers drew different frames: the speed-up changed the world")


if __name__ == "__main__":
    main()
