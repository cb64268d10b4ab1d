"""The step loop SFT and GRPO share: model, optimizer, schedule, distribution, checkpoints, logs.

A subclass implements `train_step(step) -> metrics`, calling `update(micro_losses)` to apply
one optimizer step. Several processes (``accelerate launch`` / ``torchrun``) each take their
share of every batch and average gradients, so the result equals one process on the global batch;
with ``train.distributed=fsdp`` (or an accelerate FSDP config) they also shard the weights,
gradients and optimizer states (`r1omni.training.sharding`).
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist

from r1omni.config import ConfigError, RunConfig, save_config
from r1omni.data import read_manifest
from r1omni.errors import R1OmniError
from r1omni.models import OmniPolicy, nano
from r1omni.models.cache import FeatureCache, default_cache_dir
from r1omni.models.shared_prefix import enable_checkpointing
from r1omni.training.checkpoint import load_checkpoint, optimizer_state, save_checkpoint
from r1omni.training.data import Position, RowStream
from r1omni.training.sharding import ShardedPolicy, distributed_mode


class TrainingError(R1OmniError):
    """A run that cannot go on (e.g. repeated non-finite losses)."""


def world() -> tuple[int, int]:
    """(rank, number of processes) of a torchrun / accelerate launch, or (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> None:
    """Join the process group that torchrun / accelerate launch describe in the environment."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


class Trainer:
    stage = "train"

    def __init__(self, config: RunConfig, resume: str | Path | None = None):
        config.validate()
        self.config = config
        init_distributed()
        self.rank, self.world = world()
        torch.manual_seed(config.train.seed)
        self.output = Path(config.train.output_dir)
        self.resumed_from = resume
        self.policy = self._load_policy(resume)
        self.sharding: ShardedPolicy | None = None
        self.prepare_models()
        if self.world > 1 and self.rank == 0:
            print(f"{self.world} processes, {'fsdp' if self.sharding is not None else 'ddp'}")
        self.rows = read_manifest(config.data.train)[: config.data.max_rows]
        self.check_rows(self.rows)
        self.val_rows = read_manifest(config.data.val)[: config.data.val_rows] if config.data.val else []
        trainable = [(n, p) for n, p in self.policy.named_parameters() if p.requires_grad]
        if not trainable:
            raise ConfigError("the model has no trainable parameters")
        encoders = [p for n, p in trainable if n.startswith(("towers.", "projectors."))]
        rest = [p for n, p in trainable if not n.startswith(("towers.", "projectors."))]
        groups = [{"params": rest}] + ([{"params": encoders, "lr": config.train.lr * config.train.encoder_lr_scale}]
                                       if encoders else [])
        self.optimizer = torch.optim.AdamW(groups, lr=config.train.lr, weight_decay=config.train.weight_decay)
        self.total_steps = self._total_steps()
        from transformers import get_scheduler

        updates = self.total_steps * self.updates_per_step()
        self.scheduler = get_scheduler(
            {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[config.train.scheduler],
            self.optimizer, num_warmup_steps=int(config.train.warmup_ratio * updates), num_training_steps=updates)
        self.step, position = 0, Position()
        if resume is not None:
            state = load_checkpoint(Path(resume), self.policy, self.optimizer, self.scheduler,
                                    full=self.sharding is not None)
            self.step, position = state["step"], Position(**state["position"])
        self.stream = RowStream(self.rows, self.policy.config, config.data.modalities, config.data.prompt,
                                config.data.labels, config.train.seed, position, config.data.media_cache_mb)
        self.bad_steps = 0
        self.last_batch_ids: list[str] = []
        self.writers = self._writers() if self.rank == 0 else []

    # ------------------------------------------------------------------ set-up

    def _load_policy(self, resume) -> OmniPolicy:
        source = resume or self.config.model.path
        device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
        if source:
            policy = OmniPolicy.from_pretrained(source, device=device, dtype="float32")
        else:
            policy = nano(vocab_size=self.config.model.vocab_size).to(device)
        if self.config.model.lora and not policy.config.lora:
            policy.add_lora(**self.config.model.lora)
        if self.config.model.gradient_checkpointing:
            enable_checkpointing(policy.lm)
        cache = self.config.model.feature_cache
        if cache != "none" and any(m in policy.config.frozen for m in policy.config.towers):
            policy.feature_cache = FeatureCache(default_cache_dir() if cache == "default" else cache)
        return policy.train()

    def prepare_models(self) -> None:
        """Shard the policy when asked (before the optimizer sees its parameters). Subclasses
        that need a frozen copy of the whole policy (GRPO's reference) make it first."""
        if distributed_mode(self.config.train.distributed) == "fsdp" and self.world > 1:
            self.sharding = ShardedPolicy(self.policy)

    def gathered(self):
        """Whole weights on every process for the block (generation); a no-op unsharded."""
        return self.sharding.gathered() if self.sharding is not None else nullcontext()

    def full_weights(self) -> dict | None:
        """A sharded policy's whole state dict on process 0 (every process must call this);
        None unsharded, where the policy saves its own weights."""
        return self.sharding.full_weights() if self.sharding is not None else None

    def check_rows(self, rows) -> None:
        """Subclasses reject manifests that lack what their targets need."""

    def sequences_per_example(self) -> int:
        return 1

    def updates_per_step(self) -> int:
        """Optimizer steps taken per training step (GRPO's num_iterations)."""
        return 1

    def _total_steps(self) -> int:
        if self.config.train.max_steps:
            return self.config.train.max_steps
        examples_per_step = self.config.train.batch_size // self.sequences_per_example()
        return max(1, math.ceil(self.config.train.epochs * len(self.rows) / examples_per_step))

    def local_share(self, count: int) -> int:
        """How many of a step's `count` examples this process takes."""
        if count % self.world:
            raise ConfigError(f"{count} examples per step do not split over {self.world} processes")
        return count // self.world

    def _writers(self) -> list:
        writers = []
        if "tensorboard" in self.config.train.report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter

                writers.append(("tensorboard", SummaryWriter(self.output / "tensorboard")))
            except ImportError:
                print("tensorboard is not installed; pip install tensorboard to log there")
        if "wandb" in self.config.train.report_to:
            try:
                import wandb

                writers.append(("wandb", wandb.init(project="r1omni", config=self.config.to_dict())))
            except ImportError:
                print("wandb is not installed; pip install wandb to log there")
        return writers

    # ------------------------------------------------------------------ the step

    def autocast(self):
        enabled = self.config.model.bf16
        return torch.autocast(self.policy.device.type, dtype=torch.bfloat16, enabled=enabled)

    def update(self, losses) -> dict:
        """One optimizer step from micro-batch losses (an iterable of callables returning a
        loss already scaled for accumulation). Skips the step when the loss or the gradient is
        not finite; several in a row stop the run."""
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for compute in losses:
            with self.autocast():
                loss = compute()
            loss.backward()
            total += float(loss.detach())
        params = [p for p in self.policy.parameters() if p.requires_grad]
        if self.world > 1 and self.sharding is None:  # FSDP has already averaged its shards
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad)
                p.grad /= self.world
        if self.world > 1:
            loss_tensor = torch.tensor([total], device=self.policy.device)
            dist.all_reduce(loss_tensor)
            total = float(loss_tensor) / self.world
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.train.max_grad_norm)
        grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # DTensor when sharded
        if not (math.isfinite(total) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            self.bad_steps += 1
            if self.bad_steps >= self.config.train.max_bad_steps:
                raise TrainingError(f"step {self.step}: {self.bad_steps} non-finite steps in a row (loss {total}, "
                                    f"grad norm {grad_norm}); last batch: {self.last_batch_ids}")
            return {"loss": total, "grad_norm": grad_norm, "skipped": 1}
        self.optimizer.step()
        self.scheduler.step()
        self.bad_steps = 0
        for tower in getattr(self.policy, "towers", {}).values():
            tower.forget_fingerprint()
        return {"loss": total, "grad_norm": grad_norm, "skipped": 0}

    def train_step(self, step: int) -> dict:
        raise NotImplementedError

    def evaluate(self) -> dict:
        """Greedy predictions on the validation rows (through `r1omni.predict`): UAR and WAR."""
        from r1omni.evaluate import uar, war
        from r1omni.predict import Model

        if not self.val_rows:
            return {}
        data = self.config.data
        modal = "video_audio" if set(data.modalities) == {"video", "audio"} else data.modalities[0]
        model = Model(self.policy, data.prompt, data.labels, max_new_tokens=self.max_new_tokens())
        mine = self.val_rows[self.rank :: self.world]
        labels = [row.label for row in mine]
        with self.gathered():
            predictions = [p.answer for p in model.predict_clips([(r.id, r.video, r.audio) for r in mine], modal)]
        self.policy.train()
        if self.world > 1:
            parts = [None] * self.world
            dist.all_gather_object(parts, (labels, predictions))
            labels = [x for part in parts for x in part[0]]
            predictions = [x for part in parts for x in part[1]]
        return {"val_uar": uar(labels, predictions), "val_war": war(labels, predictions)}

    def max_new_tokens(self) -> int:
        return self.config.grpo.max_completion_length

    # ------------------------------------------------------------------ loop

    def log(self, metrics: dict) -> None:
        if self.rank != 0:
            return
        with (self.output / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(metrics) + "\n")
        for kind, writer in self.writers:
            numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "step"}
            if kind == "tensorboard":
                for key, value in numbers.items():
                    writer.add_scalar(f"{self.stage}/{key}", value, metrics["step"])
            else:
                writer.log(numbers, step=metrics["step"])

    def save(self) -> Path | None:
        """A checkpoint from process 0 (every process takes part in gathering sharded states)."""
        optimizer = optimizer_state(self.policy, self.optimizer, full=self.sharding is not None)
        weights = self.full_weights()
        if self.rank != 0:
            return None
        state = {"step": self.step, "position": vars(self.stream.position), "stage": self.stage}
        return save_checkpoint(self.output / f"checkpoint-{self.step}", self.policy, optimizer, self.scheduler,
                               state, weights)

    def run(self) -> Path:
        """Train to the last step; returns the final model folder (``output_dir/final``)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.output.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            save_config(self.config, self.output / "config.yaml")
        train = self.config.train
        columns = (TextColumn(f"{self.stage}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[status]}"))
        with Progress(*columns, disable=self.rank != 0) as bar:
            task = bar.add_task(self.stage, total=self.total_steps, completed=self.step, status="")
            while self.step < self.total_steps:
                started = time.perf_counter()
                metrics = self.train_step(self.step)
                self.step += 1
                metrics.update(step=self.step, epoch=round(self.stream.epoch_fraction(), 4),
                               lr=self.scheduler.get_last_lr()[0], seconds=round(time.perf_counter() - started, 3))
                if train.eval_every and (self.step % train.eval_every == 0 or self.step == self.total_steps):
                    metrics.update(self.evaluate())
                if self.step % train.log_every == 0 or self.step == self.total_steps:
                    self.log(metrics)
                bar.update(task, completed=self.step, status=self.status(metrics))
                if train.save_every and self.step % train.save_every == 0:
                    self.save()
        final = self.output / "final"
        weights = self.full_weights()
        if self.rank == 0:
            self.policy.save_pretrained(final, weights)
        return final

    def status(self, metrics: dict) -> str:
        return f"loss {metrics.get('loss', float('nan')):.3f}  {metrics['seconds']:.1f}s/step"
