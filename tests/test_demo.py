"""`r1omni demo --quick`: every stage runs, the outputs have the promised shape, and the final
model predicts a clip that `r1omni data synth` wrote."""

import json

import pytest

from r1omni.cli import main
from r1omni.demo import STAGES, check_out_dir, quarter_means, verdict
from r1omni.errors import R1OmniError


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out), "--workers", "1"]) == 0
    return out


@pytest.mark.slow
def test_results_cover_every_stage_and_test_set(demo_dir):
    results = json.loads((demo_dir / "results.json").read_text())
    assert list(results) == [s.name for s in STAGES]
    for stage in results.values():
        for key in ("id", "ood"):
            assert 0.0 <= stage[key]["uar"] <= 1.0 and 0.0 <= stage[key]["war"] <= 1.0
            assert stage[key]["n"] == 16
        assert stage["train_seconds"] > 0 and stage["eval_seconds"] > 0


@pytest.mark.slow
def test_report_has_table_plot_samples_and_times(demo_dir):
    report = (demo_dir / "report.md").read_text()
    for text in ("| stage | paper's row | ID UAR", "R1-Omni", "MAFW-DFEW-SFT", "EMER-SFT", "grpo_rewards.png",
                 "Sample reasoning", "total wall time", "peak memory"):
        assert text in report
    assert (demo_dir / "grpo_rewards.png").stat().st_size > 1000
    run = json.loads((demo_dir / "run.json").read_text())
    assert run["quick"] and run["seconds"]["total"] > 0 and run["peak_memory_mb"] > 0
    metrics = [json.loads(line) for line in (demo_dir / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3]  # a fresh log, not appended to an old one


@pytest.mark.slow
def test_final_model_predicts_a_synthesized_clip(demo_dir, tmp_path, capsys):
    world = tmp_path / "world"
    assert main(["data", "synth", "--out", str(world), "--sizes", "pretrain=0", "coldstart=0", "rl=0", "val=0",
                 "test=1", "ood_test=0", "--workers", "1"]) == 0
    clip = next((world / "clips" / "test").glob("*.mp4"))
    capsys.readouterr()
    assert main(["predict", str(clip), "--model", str(demo_dir / "grpo" / "final"), "--max-new-tokens", "16"]) == 0
    printed = capsys.readouterr().out
    assert str(clip) in printed and "reasoning:" in printed


def test_rerun_refuses_a_folder_that_is_not_a_demo(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(R1OmniError, match="not a demo folder"):
        check_out_dir(tmp_path)


def test_quarter_means_and_verdict():
    assert quarter_means([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]) == [0.0, 1.0, 2.0, 3.0]
    assert quarter_means([0.5, 1.5]) == [1.0]

    def stage(uar_id, uar_ood):
        return {"id": {"uar": uar_id}, "ood": {"uar": uar_ood}}

    worse = {"grpo": stage(0.2, 0.1), "label_sft": stage(0.3, 0.2), "cold_start": stage(0.25, 0.1)}
    assert "does not beat label SFT in distribution" in verdict(worse)
    assert "does not improve on its cold-start" in verdict(worse)
    better = {"grpo": stage(0.4, 0.3), "label_sft": stage(0.3, 0.2), "cold_start": stage(0.25, 0.1)}
    assert "GRPO beats label SFT" in verdict(better) and "improves on its cold-start" in verdict(better)
