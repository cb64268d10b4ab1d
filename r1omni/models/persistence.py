"""Saving and restoring a policy folder: weights (safetensors), r1omni_config.json, tokenizer."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from r1omni.models.towers import ConfigError

CONFIG_NAME, WEIGHTS_NAME = "r1omni_config.json", "model.safetensors"


def resolve_device(device: str | torch.device = "auto", dtype: str | torch.dtype = "auto"
                   ) -> tuple[torch.device, torch.dtype]:
    """CUDA when available and bf16 where it is supported; otherwise the CPU in float32."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if dtype == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if cuda_bf16 else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return device, dtype


class SavedPolicy:
    """Mixin for a policy with `config` (a dataclass), `tokenizer`, `encode` and `build_inputs`."""

    def prompt(self, messages: list[dict], media):
        return self.build_inputs(messages, self.encode(media))

    def save_pretrained(self, directory: str | Path, weights: dict[str, torch.Tensor] | None = None) -> Path:
        """Weights (safetensors), `r1omni_config.json` and the tokenizer with its chat template.
        `weights`: a full state dict to write instead of the module's own (a sharded policy's,
        gathered by `torch.distributed.checkpoint.state_dict.get_model_state_dict`)."""
        from safetensors.torch import save_file, save_model

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        if weights is None:
            save_model(self, str(directory / WEIGHTS_NAME))
        else:
            save_file({k: v.contiguous() for k, v in weights.items()}, str(directory / WEIGHTS_NAME),
                      metadata={"format": "pt"})
        self.tokenizer.save_pretrained(directory)
        return directory

    def weights_changed(self) -> None:
        """Called after new weights arrive (loading); cached fingerprints must be recomputed."""

    @classmethod
    def restore(cls, directory: Path, config, device="auto", dtype="auto"):
        """Build the policy from `config`, load the folder's weights, move it to the device."""
        from safetensors.torch import load_model
        from transformers import AutoTokenizer

        policy = cls(config, AutoTokenizer.from_pretrained(directory))
        try:
            load_model(policy, str(directory / WEIGHTS_NAME))
        except (RuntimeError, OSError) as err:
            raise ConfigError(f"{directory / WEIGHTS_NAME}: weights do not fit {CONFIG_NAME} ({err})") from None
        policy.weights_changed()
        device, dtype = resolve_device(device, dtype)
        return policy.to(device=device, dtype=dtype)
