"""`load_policy`: the one loader every command uses, for r1omni's saved folders and released ones;
`export_released`: a model written back in its released layout."""

from __future__ import annotations

from pathlib import Path

import torch

from r1omni.errors import ConfigError, R1OmniError
from r1omni.models.base import CONFIG_NAME, OmniPolicy, resolve_device
from r1omni.models.humanomni.official import export_official, is_official, read_official
from r1omni.models.humanomni.policy import HumanOmniPolicy


def load_policy(directory: str | Path, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto",
                bert_tokenizer: str | Path | None = None, slow_fast: bool = False) -> OmniPolicy:
    """A policy from a folder r1omni saved (any backend) or a released HumanOmni/R1-Omni folder
    (config.json with ``model_type: HumanOmni_qwen2``; `bert_tokenizer` and `slow_fast` apply to
    those: see r1omni.models.humanomni.official). ``device="auto"``: CUDA when present, else the
    CPU; ``dtype="auto"``: bfloat16 on a GPU that supports it, else float32."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such model folder")
    if (directory / CONFIG_NAME).is_file() or not is_official(directory):
        return OmniPolicy.from_pretrained(directory, device, dtype)
    policy = read_official(directory, bert_tokenizer, slow_fast)
    device, dtype = resolve_device(device, dtype)
    return policy.to(device=device, dtype=dtype).train(False)


def export_released(policy: OmniPolicy, directory: str | Path) -> Path:
    """Write `policy` in the layout its backend's models are released in (humanomni: the
    HumanOmni/R1-Omni folder the official code reads); a clear error for a backend without one."""
    if not isinstance(policy, HumanOmniPolicy):
        raise R1OmniError(f"a {policy.config.backend} model; only humanomni models have a released layout to export to")
    return export_official(policy, directory)
