"""A few clips of the synthetic world for the page's examples, written once on first use."""

from __future__ import annotations

from pathlib import Path

from r1omni.data.manifest import read_manifest
from r1omni.data.synth import WorldConfig, write_world
from r1omni.data.synth.world import world_is_complete

EXAMPLE_CLIPS = 4


def example_clips(folder: Path, count: int = EXAMPLE_CLIPS) -> list[tuple[Path, str]]:
    """(video path, true label) of the demo world's first `count` test clips, written under
    `folder` unless they are there already (about a second)."""
    config = WorldConfig(sizes={"test": count})
    if not world_is_complete(folder, config):
        write_world(config, folder, splits=("test",))
    return [(Path(row.video), row.label) for row in read_manifest(folder / "test.jsonl")]
