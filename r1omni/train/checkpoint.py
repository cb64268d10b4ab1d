"""Checkpoints written atomically, and read back for an exact resume.

A checkpoint folder holds the model (``save_pretrained``), the optimizer and scheduler states,
the RNG states, the data position and the step. Optimizer states are keyed by parameter name
(`torch.distributed.checkpoint.state_dict`), so one folder resumes a run sharded or not. It is
written under a temporary name and renamed into place, so a crash never leaves a half-written
checkpoint under the real name (`r1omni.atomic`). ``training.pt`` holds only tensors, numbers, strings and
containers of them, and is read with ``weights_only=True``: a crafted checkpoint cannot run code.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from r1omni.atomic import writing_folder
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
    with writing_folder(directory) as temporary:
        policy.save_pretrained(temporary, weights)
        torch.save({"optimizer": optimizer, "scheduler": scheduler.state_dict(), "rng": _rng_states()},
                   temporary / "training.pt")
        (temporary / STATE).write_text(json.dumps(state, indent=2) + "\n")
    return Path(directory)


def checkpoints(folder: Path) -> list[Path]:
    """The checkpoint folders of a run (``checkpoint-STEP``), oldest step first."""
    found = [p for p in Path(folder).glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-", 1)[1]))


def keep_newest(folder: Path, limit: int | None) -> list[Path]:
    """Delete all but the `limit` newest checkpoints (`train.save_total_limit`); returns those deleted."""
    old = checkpoints(folder)[: -limit] if limit else []
    for path in old:
        shutil.rmtree(path)
    return old


def load_checkpoint(directory: Path, policy, optimizer, scheduler, full: bool = False) -> dict:
    """Restore optimizer, scheduler and RNG states; return the saved trainer state. `full`: the
    policy is sharded and each process takes its part of the saved states."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    directory = Path(directory)
    if not (directory / STATE).is_file() or not (directory / "training.pt").is_file():
        raise ConfigError(f"{directory}: not a training checkpoint (no {STATE} / training.pt)")
    try:
        saved = torch.load(directory / "training.pt", weights_only=True)
        state = json.loads((directory / STATE).read_text(encoding="utf-8"))
        set_optimizer_state_dict(policy, optimizer, saved["optimizer"], options=StateDictOptions(full_state_dict=full))
        scheduler.load_state_dict(saved["scheduler"])
        _set_rng_states(saved["rng"])
    except pickle.UnpicklingError:
        raise ConfigError(f"{directory / 'training.pt'}: holds pickled objects, which r1omni never writes "
                          "and will not load (they could run code)") from None
    except (RuntimeError, KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{directory}: not a checkpoint r1omni wrote, or damaged ({first[:200]})") from None
    return state


def _rng_states() -> dict:
    """Python's, numpy's and torch's generator states as plain values and tensors."""
    version, words, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {"python": [version, torch.tensor(words, dtype=torch.int64), gauss],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
            "torch": torch.get_rng_state()}


def _set_rng_states(states: dict) -> None:
    version, words, gauss = states["python"]
    random.setstate((version, tuple(words.tolist()), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])
