"""The synthetic world's texts, for a tokenizer that must read and write them (the nano preset's)."""

from __future__ import annotations

from r1omni.data.synth.world import SynthWorld, WorldConfig
from r1omni.labels import ALL_LABELS
from r1omni.prompts import PROMPTS


def world_texts(seed: int = 12345, clips: int = 1500) -> list[str]:
    """Prompts, labels, and the captions and reasoning targets of `clips` pretrain and cold-start
    clips of a world (only their rows are drawn: nothing is rendered)."""
    world = SynthWorld(WorldConfig(seed=seed, sizes={"pretrain": clips, "coldstart": clips}))
    texts = [p.question for p in PROMPTS.values()] + list(ALL_LABELS)
    for split in ("pretrain", "coldstart"):
        for row in world.rows(split):
            texts += [row.caption, f"<think>{row.rationale}</think>\n<answer>{row.label}</answer>"]
    return texts
