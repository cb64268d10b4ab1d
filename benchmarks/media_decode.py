"""Media decoding: 8 midpoint frames + 16 kHz audio from a 20 s 720p H.264+AAC clip.

Fast path: `r1omni.media` (demux index, then decode only the groups of pictures holding a
wanted frame). Baseline: decode every frame of the clip, keep the 8 wanted ones. Both read the
audio the same way. Run: ``python benchmarks/media_decode.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from r1omni.media import fit_square, read_audio, read_frames, segment_midpoints
from r1omni.media.encode import write_video

SECONDS, FPS, WIDTH, HEIGHT, NUM_FRAMES, SIZE = 20, 25, 1280, 720, 8, 224


def make_clip(path: Path, gop: int | None) -> Path:
    """A moving gradient with noise, so every frame differs as in real footage."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]

    def frames():
        for i in range(SECONDS * FPS):
            base = ((x + 4 * i) % 256 + (y // 3)) % 256
            noise = rng.integers(0, 24, (HEIGHT, WIDTH), dtype=np.int64)
            yield np.repeat(((base + noise) % 256).astype(np.uint8)[..., None], 3, axis=-1)

    t = np.arange(SECONDS * 16_000) / 16_000
    return write_video(path, frames(), fps=FPS, audio=0.3 * np.sin(2 * np.pi * 220 * t), gop=gop)


def decode_everything(path: Path) -> np.ndarray:
    """Baseline: decode every frame in order, keep the ones at the segment midpoints."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"  # the fastest setting here, as in r1omni.media
        frames = list(container.decode(stream))
    start = frames[0].pts
    end = frames[-1].pts + (frames[-1].pts - start) / (len(frames) - 1)
    pts = [f.pts for f in frames]
    picks = [max(i for i, p in enumerate(pts) if p <= t) for t in segment_midpoints(start, end - start, NUM_FRAMES)]
    return np.stack([fit_square(frames[i].to_image(), SIZE) for i in picks])


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        begin = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - begin)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # Keyframe every 2 s (typical of web and phone video) and x264's default (every 10 s).
        for label, gop in (("keyframe every 2 s", 2 * FPS), ("x264 default (250)", None)):
            clip = make_clip(Path(tmp) / f"clip_{gop}.mp4", gop)
            fast_s, fast = timed(lambda: (read_frames(clip, NUM_FRAMES, SIZE), read_audio(clip)), args.repeats)
            base_s, base = timed(lambda: (decode_everything(clip), read_audio(clip)), args.repeats)
            assert np.array_equal(fast[0], base[0]), "fast path and baseline picked different frames"
            rows.append({"clip": label, "r1omni_s": fast_s, "decode_all_s": base_s, "ratio": base_s / fast_s})
    print(f"{SECONDS} s {WIDTH}x{HEIGHT} H.264+AAC at {FPS} fps -> {NUM_FRAMES} frames {SIZE}px + 16 kHz audio "
          f"(median of {args.repeats})")
    print(f"{'clip':<22}{'r1omni (s)':>12}{'decode all (s)':>16}{'ratio':>8}")
    for row in rows:
        print(f"{row['clip']:<22}{row['r1omni_s']:>12.3f}{row['decode_all_s']:>16.3f}{row['ratio']:>7.1f}x")
    print(json.dumps({"benchmark": "media_decode", "results": rows}))


if __name__ == "__main__":
    main()
