"""GRPO as an algorithm, below the training runs that use it: the objective as pure tensor
functions (`grpo`), its settings, presets and checks (`settings`), and rollouts with their
rewards (`rollout`)."""
