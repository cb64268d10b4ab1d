"""The GRPO benchmarks run end to end at toy sizes and report what BENCHMARKS.md quotes
(correctness of the scripts only: no timing is checked)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def _run(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def test_grpo_step_compares_the_original_scheme_with_r1omni():
    result = _run("grpo_step.py", "--no-trl", "--prompts", "1", "--G", "2", "--steps", "1", "--completion", "4",
                  "--width", "32", "--layers", "1")
    modes = {r["mode"]: r for r in result["results"]}
    assert set(modes) == {"original", "r1omni"} and result["prompt_tokens"] > 892  # 8 x 49 + 500 media tokens
    assert result["ratios"]["original_over_r1omni"] > 0
    for r in modes.values():
        assert {"read", "generate", "reward", "ref_logprobs", "update", "other"} <= set(r["stages_s"])
        assert r["peak_mb"] >= 0


def test_rollout_compares_three_generation_paths():
    result = _run("rollout.py", "--prompts", "1", "--G", "2", "--prompt-tokens", "50", "--new-tokens", "4",
                  "--width", "32", "--layers", "1", "--repeats", "1")
    assert set(result["results"]) == {"num_return_sequences", "num_return_sequences_static", "shared_prefix"}
    assert result["ratio"] > 0 and result["ratio_vs_static"] > 0
