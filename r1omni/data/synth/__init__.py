"""The embedded synthetic audio-visual emotion world (docs/synthetic_world.md)."""

from r1omni.data.synth.world import (
           SPLITS,
           Clip,
           Sample,
           SynthWorld,
           WorldConfig,
           ablate,
           world_is_complete,
           write_world,
)

__all__ = ["SPLITS", "Clip", "Sample", "SynthWorld", "WorldConfig", "ablate", "world_is_complete", "write_world"]
