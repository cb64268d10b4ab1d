"""The embedded synthetic audio-visual emotion world (docs/synthetic_world.md)."""

from r1omni.data.synth.faithfulness import claimed_cues, cue_faithfulness, true_cues
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

__all__ = ["SPLITS", "Clip", "Sample", "SynthWorld", "WorldConfig", "ablate", "claimed_cues",
           "cue_faithfulness", "true_cues", "world_is_complete", "write_world"]
