"""How a GRPO step's cost grows with the work: G = 2, 4, 8, 16 and prompts of ~250 to ~2,000
tokens, for the original R1-Omni scheme (a) and r1omni (b), in one process; plotted as a PNG.

Prompt length is varied the way real clips vary it: more frames (49 tokens each) and finer audio
pooling (Whisper's 1,500 frames pooled by 12 … 2). Run: ``python benchmarks/scaling.py
[--out benchmarks/scaling.png] [--completion 64]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from omni_setup import (  # noqa: E402
    Shapes,
    build_model,
    make_trainer,
    prompt_length,
    time_steps,
    workdir,
    write_clips,
)

# (frames, audio pool) -> prompt of about 49 * frames + 1500 / pool + 60 tokens
PROMPT_SHAPES = [(2, 12), (4, 6), (8, 3), (16, 2), (24, 2)]
GROUP_SIZES = [2, 4, 8, 16]


def step_seconds(model: Path, manifest: Path, work: Path, G: int, completion: int, prompts: int, steps: int) -> dict:
    out = {}
    for mode in ("original", "r1omni"):
        trainer = make_trainer(mode, model, manifest, work, prompts, G, completion)
        times, _, _ = time_steps(trainer, steps)
        out[mode] = statistics.median(times)
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((axes[0], "by_G", "completions per prompt G"), (axes[1], "by_length", "prompt tokens")):
        rows = results[key]
        xs = [r["x"] for r in rows]
        for mode, style in (("original", "o-"), ("r1omni", "s-")):
            ax.plot(xs, [r[mode] for r in rows], style, label="original R1-Omni scheme" if mode == "original"
                    else "r1omni (feature cache + shared prefix)")
        ax.set_xlabel(label)
        ax.set_ylabel("seconds per GRPO step")
        ax.grid(alpha=0.3)
    axes[0].set_xscale("log", base=2)
    axes[0].set_title(f"prompt {results['by_G'][0]['prompt_tokens']} tokens")
    axes[1].set_title(f"G = {results['length_G']}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/scaling.png"))
    parser.add_argument("--completion", type=int, default=64, help="completion tokens (default 64)")
    parser.add_argument("--prompts", type=int, default=1)
    parser.add_argument("--steps", type=int, default=1, help="timed steps per point after a warm-up (default 1)")
    parser.add_argument("--length-G", type=int, default=8, help="G for the prompt-length sweep (default 8)")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()

    work = workdir()
    manifest = write_clips(work / "clips", args.prompts * (args.steps + 1))
    results = {"by_G": [], "by_length": [], "length_G": args.length_G}
    base = build_model(work / "model-8", Shapes.toy(args.width, args.layers))
    base_length = prompt_length(base, manifest)
    for G in GROUP_SIZES:
        point = step_seconds(base, manifest, work / f"g{G}", G, args.completion, args.prompts, args.steps)
        results["by_G"].append({"x": G, "prompt_tokens": base_length, **point})
        print(f"G {G:>3}  prompt {base_length:>5}  original {point['original']:7.2f} s  r1omni {point['r1omni']:7.2f} s"
              f"  ratio {point['original'] / point['r1omni']:.2f}x", flush=True)
    for frames, pool in PROMPT_SHAPES:
        model = build_model(work / f"model-{frames}-{pool}", Shapes.toy(args.width, args.layers), num_frames=frames,
                            audio_pool=pool)
        length = prompt_length(model, manifest)
        point = step_seconds(model, manifest, work / f"len{length}", args.length_G, args.completion, args.prompts,
                             args.steps)
        results["by_length"].append({"x": length, "frames": frames, "audio_pool": pool, **point})
        print(f"G {args.length_G:>3}  prompt {length:>5}  original {point['original']:7.2f} s  "
              f"r1omni {point['r1omni']:7.2f} s  ratio {point['original'] / point['r1omni']:.2f}x", flush=True)
    plot(results, args.out)
    print(f"plot: {args.out}")
    print(json.dumps({"benchmark": "scaling", **results}))


if __name__ == "__main__":
    main()
