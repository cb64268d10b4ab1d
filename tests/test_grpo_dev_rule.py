"""The rule that takes the real-AV recipe's GRPO setting from development speakers
(scripts/real_av_grpo_dev.py: pooled)."""

import pytest
from script_helpers import load_script


def report(**differences):
    return {"grpo": {stage: {"minus_coldstart": {"difference": d}} for stage, d in differences.items()}}


@pytest.fixture(scope="module")
def pooled():
    return load_script("real_av_grpo_dev").pooled


def test_highest_mean_over_pairs_wins_not_the_best_single_pair(pooled):
    summary = pooled({"12,14": report(fast=0.058, slow=0.021), "03,08": report(fast=-0.058, slow=-0.007),
                      "09,10": report(fast=-0.072, slow=-0.036)})
    assert summary["chosen"] == "slow"
    assert summary["settings"]["fast"]["mean"] == pytest.approx(-0.024)
    assert summary["settings"]["slow"]["worst"] == pytest.approx(-0.036)
    assert summary["pairs"] == ["12,14", "03,08", "09,10"]


def test_a_tie_goes_to_the_better_worst_pair(pooled):
    summary = pooled({"a": report(steady=0.01, swing=0.05), "b": report(steady=0.01, swing=-0.028)})
    assert summary["settings"]["swing"]["mean"] == pytest.approx(0.011)
    assert summary["chosen"] == "steady"  # means 1.0 and 1.1 points: within half a point


def test_only_settings_run_on_every_pair_are_pooled(pooled):
    summary = pooled({"a": report(one=0.02, seed1=0.30), "b": report(one=0.01)})
    assert list(summary["settings"]) == ["one"] and summary["chosen"] == "one"


def test_no_setting_common_to_every_pair_chooses_none(pooled):
    summary = pooled({"a": report(one=0.02), "b": report(two=0.01)})
    assert summary["settings"] == {} and summary["chosen"] is None
