"""Run settings shared by the training tests: every run tiny, two steps, on `world_dir`'s clips."""


def overrides(world_dir, model_dir, out, **extra):
    """SECTION.KEY=VALUE items for a tiny run from `model_dir` on `world_dir` (conftest fixtures)."""
    base = {"data.train": world_dir / "rl.jsonl", "model.path": model_dir, "train.output_dir": out,
            "train.batch_size": 8, "train.micro_batch_size": 4, "grpo.num_generations": 4, "train.max_steps": 2,
            "grpo.max_completion_length": 8, "train.lr": 1e-3, "train.scheduler": "constant"}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]
