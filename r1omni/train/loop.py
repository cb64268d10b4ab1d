"""What SFT and GRPO share: `setup(config)` builds a run's state, `update` takes one optimizer
step, and `run(state, step)` calls a stage's step function to the last step, with validation,
logs, checkpoints and the final model.

A stage is a plain function `step(state) -> metrics` (r1omni.train.sft.sft_step,
r1omni.train.grpo.grpo_step); what set-up needs to know of it, its settings answer
(`RunConfig.stage()`: sequences per example, updates per step, a reference, row checks).
Several processes (``accelerate launch`` / ``torchrun``) each take their share of every batch
and average gradients, so the result equals one process on the global batch; with
``train.distributed=fsdp`` (or an accelerate FSDP config) they also shard the weights,
gradients and optimizer states (`r1omni.train.dist`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from r1omni.atomic import clean_leftovers, write_text, writing_folder
from r1omni.data import ClipRow, read_manifest
from r1omni.data.acoustics import bounds_of_rows
from r1omni.errors import ConfigError, R1OmniError
from r1omni.eval.metrics import uar, war
from r1omni.models import FeatureCache, OmniPolicy, build_preset, load_policy
from r1omni.models.cache import default_cache_dir
from r1omni.models.standardize import fit_standardizers, statistics_group
from r1omni.predict import Predictor
from r1omni.progress import StageTimer, progress_bar
from r1omni.prompts import MODALITIES
from r1omni.train.checkpoint import keep_newest, load_checkpoint, optimizer_state, save_checkpoint
from r1omni.train.config import RunConfig, save_config
from r1omni.train.dist import ShardedPolicy, average_gradients, distributed_mode, init_distributed, process_info
from r1omni.train.stream import Position, RowStream, texts_for_tokenizer


class TrainingError(R1OmniError):
    """A run that cannot go on (e.g. repeated non-finite losses)."""


@dataclass
class TrainState:
    """A run between steps: what `setup` built and what the steps move on."""

    config: RunConfig
    rank: int  # this process, of `processes`
    processes: int
    rows: list[ClipRow]
    val_rows: list[ClipRow]
    policy: OmniPolicy
    reference: OmniPolicy | None  # frozen copy of the starting policy (GRPO's KL term), else None
    sharding: ShardedPolicy | None  # the policy's FSDP shards, else None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    total_steps: int
    stream: RowStream
    step: int = 0  # steps done
    writers: list = field(default_factory=list)  # (kind, writer) for tensorboard / wandb
    bad_steps: int = 0  # non-finite steps in a row
    last_batch_ids: list[str] = field(default_factory=list)  # named when the run stops on bad steps

    @property
    def output(self) -> Path:
        return Path(self.config.train.output_dir)


# ---------------------------------------------------------------------- set-up


def setup(config: RunConfig, resume: str | Path | None = None) -> TrainState:
    """Everything a run needs before its first step, in order: processes, rows, the policy (from
    `resume`, model.path or model.preset), its feature statistics, the reference, shards, the
    optimizer and schedule, the checkpoint's state, the row stream and the log writers."""
    config.validate()
    stage = config.stage()
    init_distributed()
    rank, processes = process_info()
    torch.manual_seed(config.train.seed)
    sharded = distributed_mode(config.train.distributed) == "fsdp" and processes > 1
    rows = read_manifest(config.data.train)[: config.data.max_rows]
    stage.check_rows(rows, config.data.labels, sharded)
    val_rows = read_manifest(config.data.val)[: config.data.val_rows] if config.data.val else []
    policy = load_start(config, rows, resume)
    policy.config.task = task_record(config, rows, policy.config.task or {})
    if resume is None or config.data.standardize_by:
        fit_feature_statistics(config, policy, rows, rank)
    reference = frozen_reference(config, policy, rows, resume) if stage.needs_reference() else None
    sharding = ShardedPolicy(policy) if sharded else None  # before the optimizer sees the parameters
    if sharding is not None and reference is not None:
        ShardedPolicy(reference)  # shards the reference in place
    if processes > 1 and rank == 0:
        print(f"{processes} processes, {'fsdp' if sharded else 'ddp'}")
    optimizer = make_optimizer(config, policy)
    total_steps = count_steps(config, len(rows))
    scheduler = make_scheduler(config, optimizer, total_steps * stage.updates_per_step())
    step, position = 0, Position()
    if resume is not None:
        state = load_checkpoint(Path(resume), policy, optimizer, scheduler, full=sharded)
        step, position = state["step"], Position(**state["position"])
    stream = RowStream(rows, policy, config.data.modalities, config.data.prompt, config.data.labels,
                       config.train.seed, position, config.data.media_cache_mb, config.data.standardize_by)
    return TrainState(config, rank, processes, rows, val_rows, policy, reference, sharding, optimizer, scheduler,
                      total_steps, stream, step, writers=log_writers(config) if rank == 0 else [])


def load_start(config: RunConfig, rows: list[ClipRow], source: str | Path | None = None) -> OmniPolicy:
    """The policy a run starts from: `source` (a checkpoint), else model.path, else a fresh
    model.preset; with the config's LoRA, checkpointing and feature cache, in train mode."""
    model = config.model
    source = source or model.path
    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    if source:
        policy = load_policy(source, device=device, dtype="float32")
    else:
        policy = build_preset(model.preset, texts_for_tokenizer(rows), **model.preset_options).to(device)
    if model.lora and not policy.config.lora:
        policy.add_lora(**model.lora)
    if model.gradient_checkpointing:
        policy.enable_checkpointing()
    if model.feature_cache != "none" and policy.frozen_encoders():
        policy.feature_cache = FeatureCache(default_cache_dir() if model.feature_cache == "default"
                                            else model.feature_cache)
    return policy.train()


def task_record(config: RunConfig, rows: list[ClipRow], before: dict) -> dict:
    """What the model is trained to do, recorded in it for predict and eval: the prompt, label
    set and modalities, and the terciles its voice-level words mean (a model that had them keeps
    them, else those of training rows described by `r1omni data describe-voice`)."""
    task = {"prompt": config.data.prompt, "labels": config.data.labels, "modalities": list(config.data.modalities)}
    levels = before.get("voice_levels") or bounds_of_rows(rows, config.data.train)
    if levels:
        task["voice_levels"] = {name: list(bounds) for name, bounds in levels.items()}
    if before.get("feature_statistics"):
        task["feature_statistics"] = before["feature_statistics"]
    return task


def fit_feature_statistics(config: RunConfig, policy: OmniPolicy, rows: list[ClipRow], rank: int) -> None:
    """Standardisation statistics from the training clips, when the model has standardised
    towers not fitted yet (a model trained before keeps its own); with `data.standardize_by`,
    also each corpus's (or speaker's) own, which standardise that group's clips in training.
    Groups are not saved, so they are fitted on every start (a resumed run too). Every process
    fits the same."""
    by = config.data.standardize_by
    standardizers = {m: s for m, s in policy.feature_standardizers().items() if m in config.data.modalities}
    waiting = [m for m, s in standardizers.items() if not s.fitted]
    wanted = list(standardizers) if by else waiting
    if not wanted:
        return
    with progress_bar(transient=True, disable=rank != 0) as bar:
        task = bar.add_task(f"feature statistics ({', '.join(wanted)})", total=len(rows))
        clips = (media for _, media in policy.readable_clips(rows, wanted, by))
        fitted = fit_standardizers(policy, clips, lambda done: bar.update(task, completed=done), wanted,
                                   groups=by is not None, own=waiting)
    if waiting:  # what the saved statistics came from, for predictions to say
        corpora = Counter(row.dataset for row in rows)
        policy.config.task["feature_statistics"] = ", ".join(f"{corpus} {n}" for corpus, n in sorted(corpora.items()))
    if rank == 0:
        print("standardising " + ", ".join(f"{m} features by the statistics of {n} training clips"
                                           for m, n in fitted.items() if m in waiting)
              + (f"; each {by} by its own ({', '.join(sorted({statistics_group(r, by) for r in rows}))})"
                 if by else ""))


def frozen_reference(config: RunConfig, policy: OmniPolicy, rows: list[ClipRow], resume) -> OmniPolicy:
    """A frozen copy of the run's starting policy (on resume, loaded again from the start, not
    from the checkpoint); frozen encoders are shared, not copied."""
    if resume is None:
        return policy.reference_copy()
    torch.manual_seed(config.train.seed)  # a fresh preset or LoRA start is rebuilt the same
    reference = load_start(config, rows)
    reference.share_frozen_encoders(policy)
    return reference.eval().requires_grad_(False)


def make_optimizer(config: RunConfig, policy: OmniPolicy) -> torch.optim.Optimizer:
    """AdamW over the LM's trainable parameters, and the towers' and projectors' at
    `train.encoder_lr_scale` times the rate."""
    train, parts = config.train, policy.parameter_groups()
    if not parts["lm"] and not parts["encoders"]:
        raise ConfigError("the model has no trainable parameters")
    groups = [{"params": parts["lm"]}]
    if parts["encoders"]:
        groups.append({"params": parts["encoders"], "lr": train.lr * train.encoder_lr_scale})
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)


def make_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer, updates: int):
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[config.train.scheduler]
    return get_scheduler(name, optimizer, num_warmup_steps=int(config.train.warmup_ratio * updates),
                         num_training_steps=updates)


def count_steps(config: RunConfig, rows: int) -> int:
    """train.max_steps, else the steps `train.epochs` over `rows` examples take."""
    if config.train.max_steps:
        return config.train.max_steps
    examples_per_step = config.train.batch_size // config.stage().sequences_per_example()
    return max(1, math.ceil(config.train.epochs * rows / examples_per_step))


def log_writers(config: RunConfig) -> list:
    writers = []
    if "tensorboard" in config.train.report_to:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writers.append(("tensorboard", SummaryWriter(Path(config.train.output_dir) / "tensorboard")))
        except ImportError:
            print("tensorboard is not installed; pip install tensorboard to log there")
    if "wandb" in config.train.report_to:
        try:
            import wandb

            writers.append(("wandb", wandb.init(project="r1omni", config=config.to_dict())))
        except ImportError:
            print("wandb is not installed; pip install wandb to log there")
    return writers


# ---------------------------------------------------------------------- what a step uses


def gathered(state: TrainState):
    """Whole weights on every process for the block (generation); a no-op unsharded."""
    return state.sharding.gathered() if state.sharding is not None else nullcontext()


def autocast(state: TrainState):
    return torch.autocast(state.policy.device.type, dtype=torch.bfloat16, enabled=state.config.model.bf16)


def local_share(state: TrainState, count: int) -> int:
    """How many of a step's `count` examples this process takes."""
    if count % state.processes:
        raise ConfigError(f"{count} examples per step do not split over {state.processes} processes")
    return count // state.processes


def update(state: TrainState, parts: Iterable, loss_of: Callable) -> tuple[dict, list[dict]]:
    """One optimizer step over a step's micro-batches: `loss_of(part)` returns the part's loss,
    already scaled so that the parts sum to the step's loss, and its statistics. Skips the step
    when the loss or the gradient is not finite; several in a row stop the run. Returns the
    step's loss and gradient norm, and each part's statistics."""
    state.optimizer.zero_grad(set_to_none=True)
    total, statistics = 0.0, []
    for part in parts:
        with autocast(state):
            loss, stats = loss_of(part)
        loss.backward()
        total += float(loss.detach())
        statistics.append(stats)
    params = [p for p in state.policy.parameters() if p.requires_grad]
    if state.processes > 1 and state.sharding is None:  # FSDP has already averaged its shards
        average_gradients(params, state.processes)
    if state.processes > 1:
        loss_tensor = torch.tensor([total], device=state.policy.device)
        torch.distributed.all_reduce(loss_tensor)
        total = float(loss_tensor) / state.processes
    norm = torch.nn.utils.clip_grad_norm_(params, state.config.train.max_grad_norm)
    grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # DTensor when sharded
    if not (math.isfinite(total) and math.isfinite(grad_norm)):
        state.optimizer.zero_grad(set_to_none=True)
        state.bad_steps += 1
        if state.bad_steps >= state.config.train.max_bad_steps:
            raise TrainingError(f"step {state.step}: {state.bad_steps} non-finite steps in a row (loss {total}, "
                                f"grad norm {grad_norm}); last batch: {state.last_batch_ids}")
        return {"loss": total, "grad_norm": grad_norm, "skipped": 1}, statistics
    state.optimizer.step()
    state.scheduler.step()
    state.bad_steps = 0
    state.policy.weights_changed()
    return {"loss": total, "grad_norm": grad_norm, "skipped": 0}, statistics


# ---------------------------------------------------------------------- the loop


def validate(state: TrainState) -> dict:
    """Greedy answers on the validation rows (through `r1omni.predict`): UAR and WAR."""
    if not state.val_rows:
        return {}
    data, longest = state.config.data, state.config.stage().validation_tokens()
    predictor = Predictor(state.policy, data.prompt, data.labels, max_new_tokens=longest)
    mine = state.val_rows[state.rank :: state.processes]
    labels = [row.label for row in mine]
    modalities = tuple(m for m in MODALITIES if m in data.modalities)
    with gathered(state):
        answers = [p.answer for p in predictor.predict_rows(mine, modalities)]
    state.policy.train()
    if state.processes > 1:
        parts = [None] * state.processes
        torch.distributed.all_gather_object(parts, (labels, answers))
        labels = [x for part in parts for x in part[0]]
        answers = [x for part in parts for x in part[1]]
    return {"val_uar": uar(labels, answers), "val_war": war(labels, answers)}


def log(state: TrainState, metrics: dict) -> None:
    if state.rank != 0:
        return
    with (state.output / "metrics.jsonl").open("a") as handle:
        handle.write(json.dumps(metrics) + "\n")
    for kind, writer in state.writers:
        numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "step"}
        if kind == "tensorboard":
            for key, value in numbers.items():
                writer.add_scalar(f"{state.config.kind}/{key}", value, metrics["step"])
        else:
            writer.log(numbers, step=metrics["step"])


def full_weights(state: TrainState) -> dict | None:
    """A sharded policy's whole state dict on process 0 (every process must call this);
    None unsharded, where the policy saves its own weights."""
    return state.sharding.full_weights() if state.sharding is not None else None


def save(state: TrainState) -> Path | None:
    """A checkpoint from process 0 (every process takes part in gathering sharded states)."""
    optimizer = optimizer_state(state.policy, state.optimizer, full=state.sharding is not None)
    weights = full_weights(state)
    if state.rank != 0:
        return None
    position = {"step": state.step, "position": vars(state.stream.position), "stage": state.config.kind}
    saved = save_checkpoint(state.output / f"checkpoint-{state.step}", state.policy, optimizer, state.scheduler,
                            position, weights)
    keep_newest(state.output, state.config.train.save_total_limit)
    return saved


def cut_metrics(path: Path, step: int) -> None:
    """metrics.jsonl without the rows of steps after `step`: a resumed run logs them again."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if line.endswith("\n") and json.loads(line).get("step", 0) <= step]
    if kept != lines:
        write_text(path, "".join(kept))


def run(state: TrainState, step: Callable[[TrainState], dict], status: Callable[[dict], str]) -> Path:
    """`step(state)` to the last step, with validation, logs and checkpoints at their intervals;
    returns the final model folder (``output_dir/final``). `status(metrics)`: the progress line."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    train, stage = state.config.train, state.config.kind
    state.output.mkdir(parents=True, exist_ok=True)
    if state.rank == 0:
        clean_leftovers(state.output)  # of a run killed mid-save
        cut_metrics(state.output / "metrics.jsonl", state.step)
        save_config(state.config, state.output / "config.yaml")
    columns = (TextColumn(stage), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))
    with progress_bar(*columns, disable=state.rank != 0) as bar:
        task = bar.add_task(stage, total=state.total_steps, completed=state.step, status="")
        while state.step < state.total_steps:
            timer = StageTimer()
            with timer("step"):
                metrics = step(state)
            state.step += 1
            metrics.update(step=state.step, epoch=round(state.stream.epoch_fraction(), 4),
                           lr=state.scheduler.get_last_lr()[0], seconds=round(timer.totals["step"], 3))
            if train.eval_every and (state.step % train.eval_every == 0 or state.step == state.total_steps):
                metrics.update(validate(state))
            if state.step % train.log_every == 0 or state.step == state.total_steps:
                log(state, metrics)
            bar.update(task, completed=state.step, status=status(metrics))
            if train.save_every and state.step % train.save_every == 0:
                save(state)
    final = state.output / "final"
    weights = full_weights(state)
    if state.rank == 0:
        with writing_folder(final) as temporary:  # `serve` and the next stage never see half a model
            state.policy.save_pretrained(temporary, weights)
    for kind, writer in state.writers:
        writer.close() if kind == "tensorboard" else writer.finish()
    return final
