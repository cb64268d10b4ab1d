"""`load_policy`: the one loader every command uses, for r1omni's saved folders and the folders a
backend's models are released in (`ReleasedLayout`, declared by the backend); `export_released`:
a model written back in its released layout."""

from __future__ import annotations

from pathlib import Path

import torch

from r1omni.errors import ConfigError, R1OmniError
from r1omni.models.base import CONFIG_NAME, RELEASED_LAYOUTS, OmniPolicy, loading_options, resolve_device


def load_policy(directory: str | Path, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto",
                **options) -> OmniPolicy:
    """A policy from a folder r1omni saved (any backend) or a folder in a backend's released
    layout (a released HumanOmni/R1-Omni folder: config.json with ``model_type: HumanOmni_qwen2``),
    read with the `options` that layout declares (`loading_options()`: ``bert_tokenizer``,
    ``slow_fast`` …; options of other layouts are ignored). ``device="auto"``: CUDA when present,
    else the CPU; ``dtype="auto"``: bfloat16 on a GPU that supports it, else float32."""
    known = {option.name for option in loading_options()}
    if set(options) - known:
        raise ConfigError(f"unknown model loading options {sorted(set(options) - known)}; known: {sorted(known)}")
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such model folder")
    layout = None if (directory / CONFIG_NAME).is_file() else \
        next((layout for layout in RELEASED_LAYOUTS if layout.recognises(directory)), None)
    if layout is None:
        return OmniPolicy.from_pretrained(directory, device, dtype)
    mine = {option.name for option in layout.options}
    policy = layout.read(directory, **{name: value for name, value in options.items() if name in mine})
    device, dtype = resolve_device(device, dtype)
    return policy.to(device=device, dtype=dtype).train(False)


def export_released(policy: OmniPolicy, directory: str | Path) -> Path:
    """Write `policy` in the layout its backend's models are released in (humanomni: the
    HumanOmni/R1-Omni folder the official code reads); a clear error for a backend without one."""
    layout = next((layout for layout in RELEASED_LAYOUTS
                   if layout.backend == policy.config.backend and layout.export is not None), None)
    if layout is None:
        exporting = sorted(layout.backend for layout in RELEASED_LAYOUTS if layout.export is not None)
        raise R1OmniError(f"a {policy.config.backend} model; only {', '.join(exporting)} models have a released "
                          "layout to export to")
    return layout.export(policy, directory)
