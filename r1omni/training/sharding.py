"""Fully sharded data parallel (FSDP2) for the policy: each process keeps 1/N of the trainable
weights, their gradients and optimizer states, and gathers a unit's weights only while it runs.

Chosen by ``train.distributed=fsdp``, or by an accelerate config with ``distributed_type: FSDP``
(``accelerate launch`` tells the processes through ``ACCELERATE_USE_FSDP``). Units: every
decoder layer, the input embedding (with the output embedding when they are tied), the rest
of the LM, each projector and each trainable tower. Frozen towers stay whole on every process:
they run once per clip into the feature cache and have no gradients or optimizer states.

Generation (rollout, evaluation) runs inside `ShardedPolicy.gathered()`: every unit is gathered
once for the whole block, so processes that generate different numbers of tokens need no
collective calls in step with each other. Saving gathers a full state dict onto process 0.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from torch import nn
from torch.distributed.tensor import DTensor

from r1omni.config import ConfigError


def distributed_mode(setting: str) -> str:
    """``ddp`` or ``fsdp`` from ``train.distributed`` (``auto`` reads accelerate's environment)."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        raise ConfigError("DeepSpeed is not supported: use an accelerate config with distributed_type: FSDP "
                          "(the same ZeRO-3 sharding of weights, gradients and optimizer states)")
    if setting == "auto":
        return "fsdp" if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" else "ddp"
    return setting


def _decoder_layers(lm: nn.Module) -> list[nn.Module]:
    # Hugging Face decoders name their blocks *DecoderLayer (Qwen2, Qwen2.5-Omni's thinker, Llama).
    layers = [m for m in lm.modules() if type(m).__name__.endswith("DecoderLayer")]
    if not layers:
        raise ConfigError(f"FSDP: no decoder layers found in {type(lm).__name__}")
    return layers


class ShardedPolicy:
    """Shards `policy` in place (call before building the optimizer) and gathers it on demand."""

    def __init__(self, policy: nn.Module, reshard_after_forward: bool | None = None):
        """`reshard_after_forward`: False keeps gathered weights from forward to backward (more
        memory, less communication: ZeRO-2); None reads accelerate's FSDP_RESHARD_AFTER_FORWARD."""
        from torch.distributed.fsdp import fully_shard

        if reshard_after_forward is None:
            reshard_after_forward = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() != "false"

        self.policy = policy
        self.units: list[tuple[nn.Module, bool]] = []  # (module, reshard after forward)

        def shard(module, reshard: bool = reshard_after_forward) -> None:
            fully_shard(module, reshard_after_forward=reshard)
            unit = module if isinstance(module, nn.Module) else module[0]
            # A weight no sample of this process used still takes part in the gradient exchange.
            unit.set_reduce_scatter_unused_params(True, recurse=False)
            self.units.append((unit, reshard))

        lm = policy.lm
        for layer in _decoder_layers(lm):
            shard(layer)
        embed, head = lm.get_input_embeddings(), lm.get_output_embeddings()
        tied = head is not None and head.weight is embed.weight
        # The policy embeds prompt tokens by calling the embedding directly, outside the LM's
        # forward, so the embedding needs hooks of its own; tied weights must share one unit.
        shard([embed, head] if tied else embed)
        shard(lm, reshard=False)  # the root: FSDP keeps it gathered from forward to backward
        for projector in policy.projectors.values():
            shard(projector)
        for modality, tower in getattr(policy, "towers", {}).items():
            if modality not in policy.config.frozen:
                shard(tower)
        # The LM must be the root of its units even though the embedding runs first.
        lm._get_fsdp_state()._lazy_init()
        loose = [n for n, p in policy.named_parameters() if p.requires_grad and not isinstance(p, DTensor)]
        if loose:
            raise ConfigError(f"FSDP: trainable parameters outside every sharded unit: {loose[:5]}")

    @contextmanager
    def gathered(self):
        """Every unit whole for the block (generation, evaluation), sharded again after."""
        for module, _ in self.units:
            module.set_reshard_after_forward(False, recurse=False)
            module.unshard()
        try:
            yield
        finally:
            for module, reshard in self.units:
                module.reshard()
                module.set_reshard_after_forward(reshard, recurse=False)

    def full_weights(self) -> dict:
        """The whole state dict on process 0 (CPU), empty elsewhere; every process must call it."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        weights = get_model_state_dict(self.policy, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        # Tied weights once, under the name safetensors' save_model keeps (the first sorted).
        names: dict[int, list[str]] = {}
        for name, param in self.policy.named_parameters(remove_duplicate=False):
            names.setdefault(id(param), []).append(name)
        for tied in names.values():
            for name in sorted(tied)[1:]:
                weights.pop(name, None)
        return weights
