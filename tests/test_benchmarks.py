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


def test_grpo_step_compares_the_original_scheme_r1omni_and_trl_step_by_step():
    result = _run("grpo_step.py", "--prompts", "1", "--G", "2", "--steps", "2", "--completion", "4",
                  "--width", "32", "--layers", "1")
    modes = {r["mode"]: r for r in result["results"]}
    assert set(modes) == {"original", "r1omni", "trl"} and result["prompt_tokens"] > 892  # 8 x 49 + 500 media
    assert result["ratios"]["original_over_r1omni"] > 0 and result["ratios"]["trl_over_r1omni"] > 0
    assert result["peak_flop_per_s"] > 0
    for r in modes.values():
        assert len(r["steps_s"]) == 2 and r["min_s"] <= r["step_s"] <= r["max_s"]
        assert r["flops"] > 0 and 0 < r["peak_share"] and r["peak_mb"] >= 0
    for name in ("original", "r1omni"):
        assert {"read", "generate", "reward", "ref_logprobs", "update"} <= set(modes[name]["stages_s"])
    # the original scheme runs the towers for every completion: more work per step than r1omni
    assert modes["original"]["flops"] > modes["r1omni"]["flops"]


def test_rollout_compares_four_generation_paths():
    result = _run("rollout.py", "--prompts", "1", "--G", "2", "--prompt-tokens", "50", "--new-tokens", "4",
                  "--width", "32", "--layers", "1", "--repeats", "2")
    assert set(result["results"]) == {"num_return_sequences", "num_return_sequences_static",
                                      "shared_prefix_repeated", "shared_prefix"}
    assert result["ratio"] > 0 and result["ratio_vs_static"] > 0 and result["cascade_ratio"] > 0


def test_side_by_side_times_both_modes_each_round():
    result = _run("side_by_side.py", "--steps", "1", "--rounds", "2", "--clips", "4", "--prompts", "1", "--G", "2",
                  "--tokens", "8")
    assert set(result["seconds"]) == {"one_after_the_other", "side_by_side"}
    assert all(len(values) == 2 and min(values) > 0 for values in result["seconds"].values())
    assert result["speedup"] > 0 and result["cores"] >= 1
