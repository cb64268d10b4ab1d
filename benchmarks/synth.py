"""Synthetic-world generation speed on one core: clips per second in memory and written to mp4.

In memory: 8 frames at 112x112 (the segment midpoints) + the clip's 2-5 s of 16 kHz audio, what
a trainer reads. To mp4: every frame at 10 fps, H.264 + AAC through PyAV, one process. The ratio
is what training from memory saves over generating files. Target: >= 20 clips/s in memory.
Run: ``python benchmarks/synth.py [--clips 200]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from r1omni.data.synth import SynthWorld, WorldConfig, write_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    config = WorldConfig(seed=0, sizes={"rl": args.clips})
    world = SynthWorld(config)
    world.sample("rl", 0)  # build the identity pool outside the timing

    begin = time.perf_counter()
    seconds_of_audio = sum(sample.audio.size / 16_000 for sample in world.samples("rl"))
    memory_s = time.perf_counter() - begin

    with tempfile.TemporaryDirectory() as out:
        begin = time.perf_counter()
        write_world(config, out, splits=("rl",), workers=1)
        disk_s = time.perf_counter() - begin

    memory_rate, disk_rate = args.clips / memory_s, args.clips / disk_s
    print(f"{args.clips} clips (8 frames 112x112 in memory; {config.fps} fps mp4 on disk; "
          f"mean audio {seconds_of_audio / args.clips:.2f} s), one core")
    print(f"{'path':<28}{'clips/s':>10}")
    print(f"{'in memory (r1omni)':<28}{memory_rate:>10.1f}")
    print(f"{'written to mp4 (baseline)':<28}{disk_rate:>10.1f}")
    print(f"ratio {memory_rate / disk_rate:.1f}x")
    print(json.dumps({"benchmark": "synth", "clips": args.clips, "memory_clips_per_s": memory_rate,
                      "mp4_clips_per_s": disk_rate, "ratio": memory_rate / disk_rate}))


if __name__ == "__main__":
    main()
