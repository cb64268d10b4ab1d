"""Figures and measured ceilings for docs/synthetic_world.md.

Writes docs/figures/synth_faces.png (a contact sheet: emotions x people, both domains),
docs/figures/synth_spectrograms.png (one clip per emotion) and docs/figures/synth_ceilings.json,
and prints the ceilings as a Markdown table. Run: ``python scripts/synth_report.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from r1omni.data.synth import SynthWorld, WorldConfig  # noqa: E402
from r1omni.data.synth.ceilings import cue_ceilings  # noqa: E402
from r1omni.data.synth.cues import EMOTIONS  # noqa: E402


def first_clips(world: SynthWorld, split: str, per_emotion: int, conflict: bool = False) -> dict[str, list[int]]:
    """Indices of the first non-conflict (or conflict) clips of each emotion in `split`."""
    found: dict[str, list[int]] = {e: [] for e in EMOTIONS}
    index = 0
    while any(len(v) < per_emotion for v in found.values()) and index < 5000:
        row = world.clip(split, index).row
        if row.cues["conflict"] == conflict and len(found[row.label]) < per_emotion:
            found[row.label].append(index)
        index += 1
    return found


def contact_sheet(world: SynthWorld, path: Path) -> None:
    in_domain, out_domain = first_clips(world, "test", 4), first_clips(world, "ood_test", 2)
    fig, axes = plt.subplots(len(EMOTIONS), 6, figsize=(9, 11))
    for r, emotion in enumerate(EMOTIONS):
        picks = [("test", i) for i in in_domain[emotion]] + [("ood_test", i) for i in out_domain[emotion]]
        for c, (split, index) in enumerate(picks):
            frames = world.sample(split, index, modalities=("video",)).frames
            axes[r, c].imshow(frames[len(frames) // 2])
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if c == 0:
                axes[r, c].set_ylabel(emotion, fontsize=11)
            if r == 0:
                axes[r, c].set_title("in-domain" if split == "test" else "out-of-domain", fontsize=9)
    fig.suptitle("Synthetic world: middle frame per clip (unseen test identities)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def spectrograms(world: SynthWorld, path: Path) -> None:
    picks = first_clips(world, "test", 1)
    fig, axes = plt.subplots(2, 4, figsize=(14, 6))
    for ax, emotion in zip(axes.flat, EMOTIONS):
        audio = world.sample("test", picks[emotion][0], modalities=("audio",)).audio
        ax.specgram(audio, NFFT=512, Fs=16_000, noverlap=384, vmin=-130, vmax=-40)
        ax.set_title(emotion)
        ax.set_ylim(0, 5000)
        ax.set_xlabel("s")
    axes.flat[-1].axis("off")
    axes[0, 0].set_ylabel("Hz")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    world = SynthWorld(WorldConfig(seed=args.seed))
    contact_sheet(world, args.out / "synth_faces.png")
    spectrograms(world, args.out / "synth_spectrograms.png")
    ceilings = cue_ceilings(world)
    (args.out / "synth_ceilings.json").write_text(json.dumps(ceilings, indent=2) + "\n")
    sizes = world.config.sizes
    print(f"logistic regression on true cue values, trained on rl ({sizes['rl']} clips), seed {args.seed}")
    print("| cues | test UAR | test WAR | test conflict-clip acc. "
          "| ood_test UAR | ood_test WAR | ood conflict-clip acc. |")
    print("|---|---|---|---|---|---|---|")
    for modality, by_split in ceilings.items():
        cells = []
        for split in ("test", "ood_test"):
            m = by_split[split]
            cells += [f"{m['uar']:.1%}", f"{m['war']:.1%}", f"{m['conflict_war']:.1%}"]
        print(f"| {modality} | " + " | ".join(cells) + " |")
    print(f"conflict clips: test {np.mean([r.cues['conflict'] for r in world.rows('test')]):.1%}")


if __name__ == "__main__":
    main()
