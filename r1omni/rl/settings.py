"""GRPO's settings (a run config's `grpo:` section), its presets and the checks on them.

Like every stage's settings (`r1omni.train.config.SFTSettings`), they answer what the shared
training set-up asks of a stage: sequences per example, optimizer updates per step, whether a
frozen reference is needed, how long validation answers may be, and what the rows must hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1omni.checks import choice_problems, range_problems
from r1omni.errors import ConfigError
from r1omni.rewards import reward_function
from r1omni.rl.grpo import IMPORTANCE_LEVELS, LOSS_TYPES, SCALE_REWARDS

ACCURACY_MODES = ("canonical", "exact")

# Defaults a run's `grpo.preset` applies under its own values (sections of the whole run config).
PRESETS: dict[str, dict] = {
    # The paper: beta 0.04 with k3 KL, G 8, temperature 1, lr 1e-6, per-sequence mean loss.
    "r1omni": {"grpo": dict(beta=0.04, num_generations=8, temperature=1.0, loss_type="grpo", scale_rewards="group",
                            max_completion_length=512, epsilon_high=None), "train": dict(lr=1e-6)},
    # DAPO: no KL, token-level normalisation, clip-higher, dynamic sampling.
    "dapo": {"grpo": dict(beta=0.0, loss_type="dapo", epsilon_low=0.2, epsilon_high=0.28, dynamic_sampling=True)},
    # Dr. GRPO: no std scaling, constant normaliser.
    "dr_grpo": {"grpo": dict(beta=0.0, loss_type="dr_grpo", scale_rewards="none")},
}


@dataclass
class GRPOSettings:
    preset: str | None = None  # r1omni | dapo | dr_grpo: defaults applied under the file's values
    num_generations: int = 8
    beta: float = 0.04
    epsilon_low: float = 0.2
    epsilon_high: float | None = None
    loss_type: str = "grpo"
    scale_rewards: str = "group"
    importance: str = "token"
    temperature: float = 1.0
    top_p: float = 1.0
    max_completion_length: int = 512
    num_iterations: int = 1  # updates per rollout (old log-probs kept when > 1)
    dynamic_sampling: bool = False  # drop zero-variance groups, sample more until the batch is full
    reward_weights: dict[str, float] = field(default_factory=lambda: {"accuracy": 1.0, "format": 1.0})
    accuracy_mode: str = "canonical"

    # ------------------------------------------------------------------ what set-up asks

    def sequences_per_example(self) -> int:
        return self.num_generations

    def updates_per_step(self) -> int:
        return self.num_iterations

    def needs_reference(self) -> bool:
        return self.beta > 0

    def validation_tokens(self) -> int:
        return self.max_completion_length

    def check_rows(self, rows, labels: str, sharded: bool) -> None:
        """Any row will do: its label is the accuracy reward's answer."""

    # ------------------------------------------------------------------ checks

    def problems(self, batch_size: int, running: bool) -> list[str]:
        """What is wrong with these settings; `running`: the run is a GRPO run (not only carrying them)."""
        problems = choice_problems([
            ("grpo.loss_type", self.loss_type, LOSS_TYPES), ("grpo.scale_rewards", self.scale_rewards, SCALE_REWARDS),
            ("grpo.importance", self.importance, IMPORTANCE_LEVELS),
            ("grpo.accuracy_mode", self.accuracy_mode, ACCURACY_MODES)])
        problems += range_problems([
            ("grpo.beta", self.beta, ">= 0"), ("grpo.epsilon_low", self.epsilon_low, ">= 0"),
            ("grpo.epsilon_high", self.epsilon_high, ">= 0"), ("grpo.temperature", self.temperature, ">= 0"),
            ("grpo.top_p", self.top_p, "in (0, 1]"), ("grpo.max_completion_length", self.max_completion_length, ">= 1"),
            ("grpo.num_iterations", self.num_iterations, ">= 1")])
        if not running:
            return problems
        if self.num_generations < 2:
            problems.append(f"grpo.num_generations must be at least 2, got {self.num_generations}")
        elif batch_size % self.num_generations:
            problems.append(f"train.batch_size ({batch_size}) must be a multiple of grpo.num_generations "
                            f"({self.num_generations})")
        try:
            reward_function(self.reward_weights, self.accuracy_mode)
        except ConfigError as err:
            problems.append(f"grpo.reward_weights: {err}")
        return problems
