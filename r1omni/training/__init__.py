"""What SFT and GRPO share: training examples, the step loop, checkpoints, logging."""
