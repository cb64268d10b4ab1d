"""Training runs: a run's state and the loop SFT and GRPO share (`loop`), their steps (`sft`,
`grpo`), the stages a config can name (`stages.train`), processes (`dist`), checkpoints, the row
stream training reads (`stream`) and the run configuration (`config`)."""
