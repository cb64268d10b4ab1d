"""Training: the step loop SFT and GRPO share (`loop`), processes (`dist`), checkpoints, training
examples, the run configuration and supervised fine-tuning (`sft`)."""
