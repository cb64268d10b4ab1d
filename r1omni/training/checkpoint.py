"""Checkpoints written atomically, and read back for an exact resume.

A checkpoint folder holds the model (``save_pretrained``), the optimizer and scheduler states,
the RNG states, the data position and the step. It is written under a temporary name and
renamed into place, so a crash never leaves a half-written checkpoint under the real name.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

STATE = "trainer_state.json"


def save_checkpoint(directory: Path, policy, optimizer, scheduler, state: dict) -> Path:
    directory = Path(directory)
    temporary = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    if temporary.exists():
        shutil.rmtree(temporary)
    policy.save_pretrained(temporary)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}},
               temporary / "training.pt")
    (temporary / STATE).write_text(json.dumps(state, indent=2) + "\n")
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(temporary, directory)
    return directory


def load_checkpoint(directory: Path, optimizer, scheduler) -> dict:
    """Restore optimizer, scheduler and RNG states; return the saved trainer state."""
    from r1omni.config import ConfigError

    directory = Path(directory)
    if not (directory / STATE).is_file() or not (directory / "training.pt").is_file():
        raise ConfigError(f"{directory}: not a training checkpoint (no {STATE} / training.pt)")
    saved = torch.load(directory / "training.pt", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    random.setstate(saved["rng"]["python"])
    np.random.set_state(saved["rng"]["numpy"])
    torch.set_rng_state(saved["rng"]["torch"])
    return json.loads((directory / STATE).read_text())
