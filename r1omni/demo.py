"""`r1omni demo`: the paper's comparison (its Table 1) on the embedded synthetic world, on a CPU.

Each stage is an ordinary r1omni run, the same trainers and configs a user runs by hand:

0. ``base``       perception pre-training on ``pretrain`` captions (HumanOmni before emotion data)
1. ``cold_start`` rationale SFT on ``coldstart`` from the base (the paper's EMER-SFT)
2. ``label_sft``  answer-only SFT on ``rl`` from the base (the paper's MAFW-DFEW-SFT)
3. ``grpo``       GRPO with accuracy + format rewards on ``rl`` from the cold start (R1-Omni)

Then every stage's model is evaluated on ``test`` (in-distribution) and ``ood_test``. The
numbers are whatever the run gives; the report says plainly when GRPO does not beat label SFT.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from r1omni.errors import R1OmniError


@dataclass(frozen=True)
class DemoPlan:
    """How much of everything a demo run does."""

    world: dict[str, int]  # clips per synthetic split
    steps: dict[str, int]  # optimizer steps per stage
    batch_size: int = 16  # SFT sequences per step
    grpo_prompts: int = 4  # GRPO prompts per step (x num_generations sequences)
    num_generations: int = 4
    max_completion_length: int = 96  # GRPO rollouts and evaluation
    lr: dict[str, float] = field(default_factory=lambda: {"base": 1e-3, "cold_start": 1e-3, "label_sft": 1e-3,
                                                          "grpo": 2e-5})


PLANS = {
    "default": DemoPlan(
        world={"pretrain": 500, "coldstart": 400, "rl": 600, "test": 150, "ood_test": 150},
        steps={"base": 300, "cold_start": 150, "label_sft": 150, "grpo": 100},
    ),
    "quick": DemoPlan(
        world={"pretrain": 32, "coldstart": 24, "rl": 32, "test": 16, "ood_test": 16},
        steps={"base": 4, "cold_start": 4, "label_sft": 4, "grpo": 3},
        batch_size=8, grpo_prompts=2, max_completion_length=32,
    ),
}


@dataclass(frozen=True)
class Stage:
    name: str
    title: str  # what the stage is, for the table
    paper: str  # its row in the paper's Table 1
    kind: str  # sft | grpo
    split: str  # training split of the world
    start: str  # the stage whose model it starts from ("init": the fresh nano model)
    target: str | None = None  # SFT target


STAGES = (
    Stage("base", "perception pre-training (captions)", "HumanOmni-0.5B", "sft", "pretrain", "init", "caption"),
    Stage("cold_start", "cold-start SFT (rationales)", "EMER-SFT", "sft", "coldstart", "base", "reasoning"),
    Stage("label_sft", "label SFT (answers only)", "MAFW-DFEW-SFT", "sft", "rl", "base", "label"),
    Stage("grpo", "GRPO (accuracy + format rewards)", "R1-Omni", "grpo", "rl", "cold_start"),
)
TEST_SETS = {"id": "test", "ood": "ood_test"}
SAMPLE_CLIPS = 3


@dataclass
class DemoResult:
    out: Path
    results: dict  # {stage: {"id": {...}, "ood": {...}, "train_seconds": …, "eval_seconds": …}}
    seconds: dict[str, float]  # wall time per phase
    peak_memory_mb: float


def peak_memory_mb() -> float:
    """The largest resident set of this process or any child it waited for (world writers)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports KiB


def stage_config(stage: Stage, plan: DemoPlan, out: Path, world: Path, seed: int):
    """The run config of one stage, as `r1omni sft` / `r1omni grpo` would load it."""
    from r1omni.train.config import load_config

    start = out / "init" if stage.start == "init" else out / stage.start / "final"
    overrides = [f"model.path={start}", f"data.train={world / f'{stage.split}.jsonl'}",
                 f"train.output_dir={out / stage.name}", f"train.max_steps={plan.steps[stage.name]}",
                 f"train.lr={plan.lr[stage.name]}", f"train.seed={seed}", "train.save_every=null",
                 f"grpo.max_completion_length={plan.max_completion_length}", "data.media_cache_mb=2048"]
    if stage.kind == "sft":
        # A constant rate: the nano model starts to read its clips only after a few hundred
        # steps, when a decaying schedule would have little left (docs/models.md).
        overrides += [f"sft.target={stage.target}", "train.encoder_lr_scale=0.1", "train.warmup_ratio=0.05",
                      "train.scheduler=constant",
                      f"train.batch_size={plan.batch_size}", f"train.micro_batch_size={plan.batch_size}"]
    else:
        sequences = plan.grpo_prompts * plan.num_generations
        overrides += ["grpo.preset=r1omni", f"grpo.num_generations={plan.num_generations}",
                      "train.scheduler=constant", f"train.batch_size={sequences}",
                      f"train.micro_batch_size={sequences}"]
    return load_config(None, overrides, kind=stage.kind)


def run_demo(out: str | Path, quick: bool = False, seed: int = 0, workers: int = 1,
             say: Callable[[str], None] = print) -> DemoResult:
    """Synthesize the world, train the four stages, evaluate each on both test sets and write
    results.json, report.md and the plots under `out`."""
    from r1omni.data.synth import WorldConfig, write_world
    from r1omni.data.synth.corpus import world_texts
    from r1omni.models import nano
    from r1omni.rl.trainer import GRPOTrainer
    from r1omni.train.sft import SFTTrainer

    plan = PLANS["quick" if quick else "default"]
    out = Path(out)
    check_out_dir(out)
    for stale in ["init", *(s.name for s in STAGES)]:  # a rerun starts each stage afresh
        shutil.rmtree(out / stale, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    world = out / "world"
    say(f"synthesizing the world ({sum(plan.world.values())} clips) in {world}")
    write_world(WorldConfig(seed=seed, sizes=dict(plan.world)), world, list(plan.world), workers=workers)
    seconds["world"] = time.perf_counter() - started

    clock = time.perf_counter()
    import torch

    torch.manual_seed(seed)
    nano(world_texts()).save_pretrained(out / "init")
    seconds["init"] = time.perf_counter() - clock

    results: dict[str, dict] = {}
    for stage in STAGES:
        say(f"stage {stage.name}: {stage.title} on {stage.split}, {plan.steps[stage.name]} steps")
        clock = time.perf_counter()
        config = stage_config(stage, plan, out, world, seed)
        (SFTTrainer if stage.kind == "sft" else GRPOTrainer)(config).run()
        train_seconds = time.perf_counter() - clock
        clock = time.perf_counter()
        results[stage.name] = score_stage(out / stage.name, world, plan)
        results[stage.name].update(train_seconds=round(train_seconds, 1),
                                   eval_seconds=round(time.perf_counter() - clock, 1))
        seconds[stage.name] = train_seconds + results[stage.name]["eval_seconds"]
    seconds["total"] = time.perf_counter() - started

    result = DemoResult(out, results, {k: round(v, 1) for k, v in seconds.items()}, round(peak_memory_mb(), 1))
    write_outputs(result, plan, quick, seed)
    return result


def score_stage(stage_dir: Path, world: Path, plan: DemoPlan) -> dict:
    """UAR, WAR, format rate and cue faithfulness of a stage's final model on both test sets."""
    from r1omni.data import read_manifest
    from r1omni.eval.run import evaluate_model
    from r1omni.predict import load_model

    model = load_model(stage_dir / "final", labels="dfew", max_new_tokens=plan.max_completion_length)
    summary = {}
    for key, split in TEST_SETS.items():
        rows = read_manifest(world / f"{split}.jsonl")
        scores = evaluate_model(model, rows, stage_dir / f"eval_{key}", batch_size=16)["video_audio"]
        faith = scores.faithfulness or {}
        summary[key] = {"uar": scores.uar, "war": scores.war, "format_rate": scores.format_rate,
                        "cue_f1": faith.get("f1"), "n": scores.n}
    return summary


# ----------------------------------------------------------------------------- outputs


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def table_rows(results: dict) -> list[list[str]]:
    rows = []
    for stage in STAGES:
        r = results[stage.name]
        rows.append([stage.name, stage.paper, _percent(r["id"]["uar"]), _percent(r["id"]["war"]),
                     _percent(r["ood"]["uar"]), _percent(r["ood"]["war"]), _percent(r["id"]["format_rate"]),
                     _percent(r["id"]["cue_f1"])])
    return rows


TABLE_HEADER = ["stage", "paper's row", "ID UAR", "ID WAR", "OOD UAR", "OOD WAR", "format", "cue F1"]


def markdown_table(results: dict) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    return "\n".join(lines)


def verdict(results: dict) -> str:
    """One honest sentence comparing GRPO with label SFT and with its own starting point."""
    grpo, label, cold = (results[s]["id"]["uar"] for s in ("grpo", "label_sft", "cold_start"))
    grpo_ood, label_ood = results["grpo"]["ood"]["uar"], results["label_sft"]["ood"]["uar"]
    parts = [f"GRPO {'beats' if grpo > label else 'does not beat'} label SFT in distribution "
             f"(UAR {grpo:.1%} vs {label:.1%}) and {'beats' if grpo_ood > label_ood else 'does not beat'} it "
             f"out of distribution ({grpo_ood:.1%} vs {label_ood:.1%})",
             f"it {'improves on' if grpo > cold else 'does not improve on'} its cold-start model "
             f"({cold:.1%} in distribution)"]
    return "; ".join(parts) + "."


def grpo_curves(metrics_path: Path) -> dict[str, list[float]]:
    steps, reward, accuracy, fmt = [], [], [], []
    for line in metrics_path.read_text().splitlines():
        m = json.loads(line)
        if "reward" in m:
            steps.append(m["step"])
            reward.append(m["reward"])
            accuracy.append(m["accuracy"])
            fmt.append(m["format"])
    return {"step": steps, "reward": reward, "accuracy": accuracy, "format": fmt}


def plot_grpo(curves: dict[str, list[float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def smooth(values: list[float]) -> np.ndarray:
        window = max(1, len(values) // 10)
        return np.convolve(values, np.ones(window) / window, mode="valid")

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for key in ("reward", "accuracy", "format"):
        values = curves[key]
        ax.plot(curves["step"], values, alpha=0.25)
        smoothed = smooth(values)
        ax.plot(curves["step"][len(values) - len(smoothed):], smoothed, label=f"{key} (moving mean)",
                color=ax.lines[-1].get_color())
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("mean over the step's completions")
    ax.set_title("GRPO on the rl split: reward, accuracy reward, format reward")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def quarter_means(values: list[float]) -> list[float]:
    """Means of the four quarters of a run (the whole run when it is shorter than four steps)."""
    if len(values) < 4:
        return [sum(values) / len(values)] if values else []
    size = len(values) / 4
    return [sum(values[round(i * size):round((i + 1) * size)]) / (round((i + 1) * size) - round(i * size))
            for i in range(4)]


def _shorten(text: str, limit: int = 400) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return (text[:limit] + " …") if len(text) > limit else (text or "(empty)")


def sample_reasoning(out: Path, count: int = SAMPLE_CLIPS) -> list[dict]:
    """The first test clips' label and each stage's completion."""
    samples: list[dict] = []
    for stage in STAGES:
        lines = (out / stage.name / "eval_id" / "predictions.jsonl").read_text().splitlines()[:count]
        for i, line in enumerate(lines):
            row = json.loads(line)
            if len(samples) <= i:
                samples.append({"id": row["id"], "label": row["label"], "completions": {}})
            samples[i]["completions"][stage.name] = row["completion"]
    return samples


def write_outputs(result: DemoResult, plan: DemoPlan, quick: bool, seed: int) -> None:
    out = result.out
    curves = grpo_curves(out / "grpo" / "metrics.jsonl")
    plot_grpo(curves, out / "grpo_rewards.png")
    payload = {stage: {k: v for k, v in r.items()} for stage, r in result.results.items()}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    run = {"quick": quick, "seed": seed, "plan": asdict(plan), "seconds": result.seconds,
           "peak_memory_mb": result.peak_memory_mb,
           "grpo_accuracy_by_quarter": quarter_means(curves["accuracy"]),
           "grpo_reward_by_quarter": quarter_means(curves["reward"])}
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    (out / "report.md").write_text(markdown_report(result, plan, curves, quick, seed))


def markdown_report(result: DemoResult, plan: DemoPlan, curves: dict, quick: bool, seed: int) -> str:
    results, seconds = result.results, result.seconds
    lines = [f"# r1omni demo{' (--quick)' if quick else ''}: the R1-Omni comparison on the synthetic world", "",
             f"Nano model, world seed {seed}. Test sets: `test` (in-distribution, {results['grpo']['id']['n']} clips) "
             f"and `ood_test` (unseen recording conditions, {results['grpo']['ood']['n']} clips). Percentages; "
             "format = share of completions in the `<think>…</think><answer>…</answer>` shape; cue F1 = how well "
             "the cues the reasoning names match the clip's true cues (docs/synthetic_world.md).", "",
             markdown_table(results), "", f"**{verdict(results)}**", ""]
    accuracy = ", ".join(f"{v:.3f}" for v in quarter_means(curves["accuracy"]))
    reward = ", ".join(f"{v:.3f}" for v in quarter_means(curves["reward"]))
    lines += ["## GRPO", "", f"{len(curves['step'])} steps of {plan.grpo_prompts} prompts x {plan.num_generations} "
              f"completions. Mean accuracy reward by quarter of the run: {accuracy}; total reward: {reward}.", "",
              "![GRPO rewards](grpo_rewards.png)", ""]
    lines += ["## Stages", "", "| stage | what | training split | steps | train s | eval s |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {s.name} | {s.title}, from {s.start} | {s.split} | {plan.steps[s.name]} | "
              f"{results[s.name]['train_seconds']:.0f} | {results[s.name]['eval_seconds']:.0f} |" for s in STAGES]
    lines += ["", f"World synthesis {seconds['world']:.0f} s, model init {seconds['init']:.0f} s; total wall time "
              f"{seconds['total'] / 60:.1f} min; peak memory {result.peak_memory_mb / 1024:.2f} GB.", ""]
    lines += ["## Sample reasoning (first test clips)", ""]
    for sample in sample_reasoning(result.out):
        lines += [f"**{sample['id']}** (label: {sample['label']})", ""]
        lines += [f"- {stage}: `{_shorten(text)}`" for stage, text in sample["completions"].items()]
        lines.append("")
    lines += ["Each stage's predictions, confusion matrix and per-class recall are in `<stage>/eval_id/` and "
              "`<stage>/eval_ood/`; training metrics in `<stage>/metrics.jsonl`.", ""]
    return "\n".join(lines)


def check_out_dir(out: Path) -> None:
    """Refuse to clear stage folders inside a folder that holds something else."""
    if out.exists() and any(out.iterdir()) and not (out / "run.json").exists() and not (out / "world").exists():
        raise R1OmniError(f"{out} exists and is not a demo folder; choose an empty or new --out")
