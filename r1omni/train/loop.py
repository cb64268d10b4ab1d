"""The step loop SFT and GRPO share: model, optimizer, schedule, distribution, checkpoints, logs.

A subclass implements `train_step(step) -> metrics`, calling `update(micro_losses)` to apply
one optimizer step. Several processes (``accelerate launch`` / ``torchrun``) each take their
share of every batch and average gradients, so the result equals one process on the global batch;
with ``train.distributed=fsdp`` (or an accelerate FSDP config) they also shard the weights,
gradients and optimizer states (`r1omni.train.dist`).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from r1omni.atomic import clean_leftovers, write_text, writing_folder
from r1omni.data import read_manifest
from r1omni.data.acoustics import bounds_of_rows
from r1omni.errors import ConfigError, R1OmniError
from r1omni.eval.metrics import uar, war
from r1omni.models import FeatureCache, OmniPolicy, build_preset, load_policy
from r1omni.models.cache import default_cache_dir
from r1omni.models.standardize import fit_standardizers
from r1omni.predict import Predictor
from r1omni.prompts import MODALITIES
from r1omni.train.checkpoint import keep_newest, load_checkpoint, optimizer_state, save_checkpoint
from r1omni.train.config import RunConfig, save_config
from r1omni.train.dist import ShardedPolicy, average_gradients, distributed_mode, init_distributed, process_info
from r1omni.train.examples import Position, RowStream, texts_for_tokenizer


class TrainingError(R1OmniError):
    """A run that cannot go on (e.g. repeated non-finite losses)."""


class StageTimer:
    """Seconds spent in each named stage of a step, summed over the stage's entries."""

    def __init__(self):
        self.totals: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.totals[stage] += time.perf_counter() - started

    def metrics(self) -> dict[str, float]:
        return {f"time_{stage}": round(seconds, 4) for stage, seconds in self.totals.items()}


class Trainer:
    stage = "train"

    def __init__(self, config: RunConfig, resume: str | Path | None = None):
        config.validate()
        self.config = config
        init_distributed()
        self.rank, self.processes = process_info()
        torch.manual_seed(config.train.seed)
        self.output = Path(config.train.output_dir)
        self.resumed_from = resume
        self.rows = read_manifest(config.data.train)[: config.data.max_rows]
        self.check_rows(self.rows)
        self.val_rows = read_manifest(config.data.val)[: config.data.val_rows] if config.data.val else []
        self.policy = self._load_policy(resume)
        self.policy.config.task = self._task(config, self.policy.config.task or {})
        if resume is None:
            self._fit_standardizers()
        self.sharding: ShardedPolicy | None = None
        self.prepare_models()
        if self.processes > 1 and self.rank == 0:
            print(f"{self.processes} processes, {'fsdp' if self.sharding is not None else 'ddp'}")
        parts = self.policy.parameter_groups()
        if not parts["lm"] and not parts["encoders"]:
            raise ConfigError("the model has no trainable parameters")
        groups = [{"params": parts["lm"]}] + ([{"params": parts["encoders"],
                                                "lr": config.train.lr * config.train.encoder_lr_scale}]
                                              if parts["encoders"] else [])
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
        self.stream = RowStream(self.rows, self.policy, config.data.modalities, config.data.prompt,
                                config.data.labels, config.train.seed, position, config.data.media_cache_mb)
        self.bad_steps = 0
        self.last_batch_ids: list[str] = []
        self.writers = self._writers() if self.rank == 0 else []

    # ------------------------------------------------------------------ set-up

    def _task(self, config: RunConfig, before: dict) -> dict:
        """What the model is trained to do, recorded in it for predict and eval: the prompt, label
        set and modalities, and the terciles its voice-level words mean (a model that had them keeps
        them, else those of training rows described by `r1omni data describe-voice`)."""
        task = {"prompt": config.data.prompt, "labels": config.data.labels, "modalities": list(config.data.modalities)}
        levels = before.get("voice_levels") or bounds_of_rows(self.rows, config.data.train)
        if levels:
            task["voice_levels"] = {name: list(bounds) for name, bounds in levels.items()}
        return task

    def _load_policy(self, resume) -> OmniPolicy:
        """The checkpoint's policy, else the config's model.path, else a fresh model.preset."""
        model = self.config.model
        source = resume or model.path
        device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
        if source:
            policy = load_policy(source, device=device, dtype="float32")
        else:
            policy = build_preset(model.preset, texts_for_tokenizer(self.rows), **model.preset_options).to(device)
        if model.lora and not policy.config.lora:
            policy.add_lora(**model.lora)
        if model.gradient_checkpointing:
            policy.enable_checkpointing()
        if model.feature_cache != "none" and policy.frozen_encoders():
            policy.feature_cache = FeatureCache(default_cache_dir() if model.feature_cache == "default"
                                                else model.feature_cache)
        return policy.train()

    def _fit_standardizers(self) -> None:
        """Standardisation statistics from the training clips, when the model has standardised
        towers not fitted yet (a model trained before keeps its own). Every process fits the same."""
        waiting = [m for m, s in self.policy.feature_standardizers().items()
                   if not s.fitted and m in self.config.data.modalities]
        if not waiting:
            return
        from r1omni.progress import progress_bar

        with progress_bar(transient=True, disable=self.rank != 0) as bar:
            task = bar.add_task(f"feature statistics ({', '.join(waiting)})", total=len(self.rows))
            clips = (media for _, media in self.policy.readable_clips(self.rows, waiting))
            fitted = fit_standardizers(self.policy, clips, lambda done: bar.update(task, completed=done), waiting)
        if self.rank == 0:
            print("standardising " + ", ".join(f"{m} features by the statistics of {n} training clips"
                                               for m, n in fitted.items()))

    def prepare_models(self) -> None:
        """Shard the policy when asked (before the optimizer sees its parameters). Subclasses
        that need a frozen copy of the whole policy (GRPO's reference) make it first."""
        if distributed_mode(self.config.train.distributed) == "fsdp" and self.processes > 1:
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
        if count % self.processes:
            raise ConfigError(f"{count} examples per step do not split over {self.processes} processes")
        return count // self.processes

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
        if self.processes > 1 and self.sharding is None:  # FSDP has already averaged its shards
            average_gradients(params, self.processes)
        if self.processes > 1:
            loss_tensor = torch.tensor([total], device=self.policy.device)
            torch.distributed.all_reduce(loss_tensor)
            total = float(loss_tensor) / self.processes
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
        self.policy.weights_changed()
        return {"loss": total, "grad_norm": grad_norm, "skipped": 0}

    def train_step(self, step: int) -> dict:
        raise NotImplementedError

    def validate(self) -> dict:
        """Greedy answers on the validation rows (through `r1omni.predict`): UAR and WAR."""
        if not self.val_rows:
            return {}
        data = self.config.data
        predictor = Predictor(self.policy, data.prompt, data.labels, max_new_tokens=self.max_new_tokens())
        mine = self.val_rows[self.rank :: self.processes]
        labels = [row.label for row in mine]
        modalities = tuple(m for m in MODALITIES if m in data.modalities)
        with self.gathered():
            answers = [p.answer for p in predictor.predict_rows(mine, modalities)]
        self.policy.train()
        if self.processes > 1:
            parts = [None] * self.processes
            torch.distributed.all_gather_object(parts, (labels, answers))
            labels = [x for part in parts for x in part[0]]
            answers = [x for part in parts for x in part[1]]
        return {"val_uar": uar(labels, answers), "val_war": war(labels, answers)}

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
        saved = save_checkpoint(self.output / f"checkpoint-{self.step}", self.policy, optimizer, self.scheduler,
                                state, weights)
        keep_newest(self.output, self.config.train.save_total_limit)
        return saved

    def _cut_metrics(self, step: int) -> None:
        """metrics.jsonl without the rows of steps after `step`: a resumed run logs them again."""
        path = self.output / "metrics.jsonl"
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if line.endswith("\n") and json.loads(line).get("step", 0) <= step]
        if kept != lines:
            write_text(path, "".join(kept))

    def run(self) -> Path:
        """Train to the last step; returns the final model folder (``output_dir/final``)."""
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        from r1omni.progress import progress_bar

        self.output.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            clean_leftovers(self.output)  # of a run killed mid-save
            self._cut_metrics(self.step)
            save_config(self.config, self.output / "config.yaml")
        train = self.config.train
        columns = (TextColumn(f"{self.stage}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[status]}"))
        with progress_bar(*columns, disable=self.rank != 0) as bar:
            task = bar.add_task(self.stage, total=self.total_steps, completed=self.step, status="")
            while self.step < self.total_steps:
                started = time.perf_counter()
                metrics = self.train_step(self.step)
                self.step += 1
                metrics.update(step=self.step, epoch=round(self.stream.epoch_fraction(), 4),
                               lr=self.scheduler.get_last_lr()[0], seconds=round(time.perf_counter() - started, 3))
                if train.eval_every and (self.step % train.eval_every == 0 or self.step == self.total_steps):
                    metrics.update(self.validate())
                if self.step % train.log_every == 0 or self.step == self.total_steps:
                    self.log(metrics)
                bar.update(task, completed=self.step, status=self.status(metrics))
                if train.save_every and self.step % train.save_every == 0:
                    self.save()
        final = self.output / "final"
        weights = self.full_weights()
        if self.rank == 0:
            with writing_folder(final) as temporary:  # `serve` and the next stage never see half a model
                self.policy.save_pretrained(temporary, weights)
        for kind, writer in self.writers:
            writer.close() if kind == "tensorboard" else writer.finish()
        return final

    def status(self, metrics: dict) -> str:
        return f"loss {metrics.get('loss', float('nan')):.3f}  {metrics['seconds']:.1f}s/step"
