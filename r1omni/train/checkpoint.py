"""Checkpoints written atomically, and read back for an exact resume.

A checkpoint folder holds the model (``save_pretrained``), the optimizer and scheduler states,
the RNG states, the data position and the step. Optimizer states are keyed by parameter name
(`torch.distributed.checkpoint.state_dict`), so one folder resumes a run sharded or not. It is
written under a temporary name and renamed into place, so a crash never leaves a half-written
checkpoint under the real name.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from r1omni.errors import ConfigError

STATE = "trainer_state.json"


def optimizer_state(policy, optimizer, full: bool) -> dict:
    """The optimizer's state by parameter name; `full` gathers sharded (FSDP) states onto
    process 0 (every process must call it then; the others get an empty dict)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(policy, optimizer, options=StateDictOptions(full_state_dict=full, cpu_offload=full))


def save_checkpoint(directory: Path, policy, optimizer: dict, scheduler, state: dict, weights: dict | None = None
                    ) -> Path:
    """`optimizer`: the dict from `optimizer_state`; `weights`: a sharded policy's full state dict."""
    directory = Path(directory)
    temporary = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    if temporary.exists():
        shutil.rmtree(temporary)
    policy.save_pretrained(temporary, weights)
    torch.save({"optimizer": optimizer, "scheduler": scheduler.state_dict(),
                "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}},
               temporary / "training.pt")
    (temporary / STATE).write_text(json.dumps(state, indent=2) + "\n")
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(temporary, directory)
    return directory


def load_checkpoint(directory: Path, policy, optimizer, scheduler, full: bool = False) -> dict:
    """Restore optimizer, scheduler and RNG states; return the saved trainer state. `full`: the
    policy is sharded and each process takes its part of the saved states."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    directory = Path(directory)
    if not (directory / STATE).is_file() or not (directory / "training.pt").is_file():
        raise ConfigError(f"{directory}: not a training checkpoint (no {STATE} / training.pt)")
    saved = torch.load(directory / "training.pt", weights_only=False)
    set_optimizer_state_dict(policy, optimizer, saved["optimizer"], options=StateDictOptions(full_state_dict=full))
    scheduler.load_state_dict(saved["scheduler"])
    random.setstate(saved["rng"]["python"])
    np.random.set_state(saved["rng"]["numpy"])
    torch.set_rng_state(saved["rng"]["torch"])
    return json.loads((directory / STATE).read_text())
