#!/usr/bin/env bash
# The GPU figures of BENCHMARKS.md: the GRPO step and the rollout at R1-Omni-0.5B's real widths
# and at the toy widths, in bfloat16 on the first CUDA device. Logs go to ${OUT:-benchmarks/out}.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
export PYTHONUNBUFFERED=1
python3 benchmarks/grpo_step.py --shapes r1omni-0.5b --device cuda --bf16 --steps 5 2>&1 | tee "$out/grpo_step_05b.log" ||
    { echo "with TRL it failed; without:"; python3 benchmarks/grpo_step.py --shapes r1omni-0.5b --device cuda --bf16 \
        --steps 5 --modes original,r1omni 2>&1 | tee "$out/grpo_step_05b_no_trl.log"; }
python3 benchmarks/rollout.py --shapes r1omni-0.5b --device cuda --bf16 --repeats 5 2>&1 | tee "$out/rollout_05b.log" || true
python3 benchmarks/grpo_step.py --device cuda --bf16 --steps 5 2>&1 | tee "$out/grpo_step_toy.log" || true
