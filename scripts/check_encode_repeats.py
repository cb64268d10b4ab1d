"""Whether encoding the same clip again gives the same video: one synthetic-world clip rendered
once, then written by `r1omni.media.write_video` several times in each of several processes, with
and without its sound, and with x264 options added; prints and writes how many different video
bitstreams came out (docs/architecture.md, "The refactor that introduced this layout").

    python scripts/check_encode_repeats.py --out docs/figures/encode_repeats.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np

VARIANTS = {  # name: (with sound, x264 options added)
    "default": (True, {}),
    "threads=1": (True, {"threads": "1"}),
    "no sound": (False, {}),
    "rc-lookahead=0": (True, {"x264-params": "rc-lookahead=0"}),
}


def encode_repeatedly(variant: str, repeats: int) -> list[str]:
    """The video packets' md5 of each of `repeats` encodes in this process."""
    from r1omni.data.synth.world import WorldConfig, _world
    from r1omni.media import encode

    sound, extra = VARIANTS[variant]
    world = _world(json.dumps(WorldConfig().to_json(), sort_keys=True))
    clip = world.clip("test", 0)
    frames, audio = world.render_frames(clip, np.arange(clip.frame_count)), world.render_audio(clip)
    add_stream = av.container.OutputContainer.add_stream

    def with_options(self, codec, rate=None, options=None, **kwargs):  # the x264 options under test
        if codec == "libx264":
            options = {**(options or {}), **extra}
        return add_stream(self, codec, rate=rate, options=options, **kwargs)

    av.container.OutputContainer.add_stream = with_options
    hashes = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(repeats):
            path = encode.write_video(Path(folder) / f"{i}.mp4", frames, fps=25, audio=audio if sound else None)
            with av.open(str(path)) as container:
                hashes.append(hashlib.md5(b"".join(bytes(p) for p in container.demux(video=0))).hexdigest())
    return hashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=4, help="encodes in each process")
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the counts")
    args = parser.parse_args()
    found = {}
    for variant in VARIANTS:
        with ProcessPoolExecutor(2) as pool:
            runs = list(pool.map(encode_repeatedly, [variant] * args.processes, [args.repeats] * args.processes))
        hashes = [h for run in runs for h in run]
        found[variant] = {"encodes": len(hashes), "different_bitstreams": len(set(hashes))}
        print(f"{variant:16} {len(set(hashes))} different video bitstreams in {len(hashes)} encodes")
    args.out.write_text(json.dumps({"clip": "synthetic world seed 0, test clip 0", "versions": {
        "av": av.__version__, "libx264": "as bundled with av"}, "variants": found}, indent=2) + "\n")


if __name__ == "__main__":
    main()
