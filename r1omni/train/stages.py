"""The stages a run config can name (its `kind`), and `train`, which runs one.

Adding a stage: a module with its step function (`step(state) -> metrics`, as sft.py and
grpo.py) and its progress line, an entry here, and its settings in `RunConfig` answering what
`setup` asks (r1omni.train.config.SFTSettings, r1omni.rl.settings.GRPOSettings).
"""

from __future__ import annotations

from pathlib import Path

from r1omni.train.config import RunConfig
from r1omni.train.grpo import grpo_status, grpo_step
from r1omni.train.loop import TrainState, run, setup
from r1omni.train.sft import sft_status, sft_step, warm_up

STAGES = {"sft": (sft_step, sft_status), "grpo": (grpo_step, grpo_status)}


def train(config: RunConfig, resume: str | Path | None = None) -> Path:
    """Train `config`'s stage to its last step (from the checkpoint `resume` if given); returns
    the final model folder (``train.output_dir/final``)."""
    return train_from(setup(config, resume))


def train_from(state: TrainState) -> Path:
    """Train a state `setup` built (its config's stage) to the last step; the final model folder."""
    if state.config.kind == "sft" and state.config.sft.alignment_epochs and state.step == 0:
        warm_up(state)  # the projectors alone, before the first step
    step, status = STAGES[state.config.kind]
    return run(state, step, status)
