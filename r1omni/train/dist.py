"""Several processes: joining the group, averaging gradients (DDP), and sharding (FSDP2).

With DDP every process keeps the whole policy and gradients are averaged in buckets after each
backward pass. With FSDP (``train.distributed=fsdp``, or an accelerate config with
``distributed_type: FSDP``, which ``accelerate launch`` passes on as ``ACCELERATE_USE_FSDP``) each
process keeps 1/N of the trainable weights, their gradients and optimizer states, and gathers a
unit's weights only while it runs. The policy names its units (`OmniPolicy.shard_units`): decoder
layers, the (tied) embedding, the LM as root, projectors and trainable encoders; frozen encoders
stay whole on every process (they run once per clip into the feature cache).

Generation (rollout, evaluation) runs inside `ShardedPolicy.gathered()`: every unit is gathered
once for the whole block, so processes that generate different numbers of tokens need no
collective calls in step with each other. Saving gathers a full state dict onto process 0.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor

from r1omni.errors import ConfigError

BUCKET_BYTES = 25 * 2**20  # gradients averaged per all_reduce call, as DDP buckets them


def process_info() -> tuple[int, int]:
    """(rank, number of processes) of a torchrun / accelerate launch, or (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> None:
    """Join the process group that torchrun / accelerate launch describe in the environment."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def leave_distributed() -> None:
    """Leave the process group once every process is done. Exiting without this lets the
    interpreter tear down gloo's threads while they are live (``terminate called without an
    active exception``: the launcher then reports the run failed after it saved its model)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def distributed_mode(setting: str) -> str:
    """``ddp`` or ``fsdp`` from ``train.distributed`` (``auto`` reads accelerate's environment)."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        raise ConfigError("DeepSpeed is not supported: use an accelerate config with distributed_type: FSDP "
                          "(the same ZeRO-3 sharding of weights, gradients and optimizer states)")
    if setting == "auto":
        return "fsdp" if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" else "ddp"
    return setting


def average_gradients(params: list[nn.Parameter], processes: int, bucket_bytes: int = BUCKET_BYTES) -> None:
    """Average the gradients of `params` over all processes, a few large all_reduce calls rather
    than one per tensor. A parameter this process gave no gradient contributes zeros."""
    grads = []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    for bucket in _buckets(grads, bucket_bytes):
        flat = torch.cat([g.reshape(-1) for g in bucket])  # [total numel of the bucket]
        dist.all_reduce(flat)
        flat /= processes
        for grad, part in zip(bucket, flat.split([g.numel() for g in bucket])):
            grad.copy_(part.view_as(grad))


def _buckets(tensors: list[torch.Tensor], limit: int):
    """Consecutive runs of tensors of one dtype, each about `limit` bytes."""
    bucket, size = [], 0
    for tensor in tensors:
        if bucket and (size >= limit or tensor.dtype != bucket[0].dtype):
            yield bucket
            bucket, size = [], 0
        bucket.append(tensor)
        size += tensor.numel() * tensor.element_size()
    if bucket:
        yield bucket


class ShardedPolicy:
    """Shards `policy` in place (call before building the optimizer) and gathers it on demand."""

    def __init__(self, policy, reshard_after_forward: bool | None = None):
        """`reshard_after_forward`: False keeps gathered weights from forward to backward (more
        memory, less communication: ZeRO-2); None reads accelerate's FSDP_RESHARD_AFTER_FORWARD."""
        from torch.distributed.fsdp import fully_shard

        if reshard_after_forward is None:
            reshard_after_forward = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() != "false"

        self.policy = policy
        self.units: list[tuple[nn.Module, bool]] = []  # (module, reshard after forward)

        def shard(module, reshard: bool = reshard_after_forward, **options) -> None:
            fully_shard(module, reshard_after_forward=reshard, **options)
            unit = module if isinstance(module, nn.Module) else module[0]
            # A weight no sample of this process used still takes part in the gradient exchange.
            unit.set_reduce_scatter_unused_params(True, recurse=False)
            self.units.append((unit, reshard))

        plan = policy.shard_units()
        for unit in plan.inner:
            shard(unit)
        # The root: FSDP keeps it gathered from forward to backward.
        shard(plan.root, reshard=False, ignored_params=plan.keep_whole or None)
        for unit in plan.outer:
            shard(unit)
        # The LM must be the root of its units even though the embedding runs first.
        plan.root._get_fsdp_state()._lazy_init()
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
