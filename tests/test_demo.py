"""`r1omni demo --quick`: every stage runs, the outputs have the promised shape, and the final
model predicts a clip that `r1omni data synth` wrote."""

import json

import pytest

from r1omni.cli import main
from r1omni.demo import STAGES, check_out_dir
from r1omni.demo.report import quarter_means, verdicts, write_seed_summary
from r1omni.errors import R1OmniError


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out), "--workers", "2"]) == 0  # stages side by side
    return out


@pytest.mark.slow
def test_results_cover_every_stage_and_test_set(demo_dir):
    results = json.loads((demo_dir / "results.json").read_text())
    assert list(results["stages"]) == [s.name for s in STAGES]
    for name, stage in results["stages"].items():
        for key in ("id", "ood"):
            scores = stage[key]
            assert scores["n"] == 48
            assert scores["uar_ci"][0] <= scores["uar"] <= scores["uar_ci"][1]
            assert scores["war_ci"][0] <= scores["war"] <= scores["war_ci"][1]
        assert stage["eval_seconds"] > 0 and (stage["train_seconds"] > 0 or name == "base")
    assert set(results["differences"]) == {"grpo-label_sft", "grpo-cold_start", "grpo_faithful-grpo"}
    for key in ("id", "ood"):  # the reasoning's claims, with intervals, for the stages that reason
        faithful = results["stages"]["grpo_faithful"][key]
        assert faithful["cue_precision_ci"][0] <= faithful["cue_precision"] <= faithful["cue_precision_ci"][1]
        assert 0 <= faithful["wrong_modality_rate"] <= 1 and set(faithful["cue_per_modality"]) == {"face", "voice"}


@pytest.mark.slow
def test_quick_stages_answer_in_the_format_and_beat_chance(demo_dir):
    """What a new user sees first: trained stages that answer, not a table of zeros."""
    stages = json.loads((demo_dir / "results.json").read_text())["stages"]
    # Of 48 in-distribution clips, these stages wrote the format on 43 to 47 in quick runs on freshly
    # written worlds (whose clips differ a little from run to run, docs/architecture.md); a run with
    # 43 failed the earlier format bound of 0.9, and one whose cold start answered on 43 the same
    # bound on answers. A stage that has not learnt the format writes it on almost none, and one
    # that has not learnt the labels names none.
    assert stages["cold_start"]["id"]["format_rate"] > 0.85 and stages["grpo"]["id"]["format_rate"] > 0.85
    for name in ("cold_start", "label_sft", "grpo", "grpo_faithful"):
        assert stages[name]["id"]["answered_rate"] > 0.85, name
        assert stages[name]["id"]["uar"] > 1 / 7, name  # chance over the seven classes


@pytest.mark.slow
def test_report_has_table_verdicts_curves_samples_and_times(demo_dir):
    report = (demo_dir / "report.md").read_text()
    for text in ("| stage | paper's row | ID UAR", "R1-Omni", "MAFW-DFEW-SFT", "EMER-SFT", "grpo_curves.png",
                 "What the comparison shows", "grpo − label_sft", "grpo_faithful − grpo", "Sample reasoning",
                 "total wall time", "peak memory", "conflict acc.", "wrong modality", "grpo_faithful_curves.png",
                 "with the faithfulness reward"):
        assert text in report, text
    assert (demo_dir / "grpo_curves.png").stat().st_size > 1000
    assert (demo_dir / "grpo_faithful.log").is_file()  # a stage run in its own process logs to a file
    run = json.loads((demo_dir / "run.json").read_text())
    assert run["quick"] and run["seconds"]["total"] > 0 and run["peak_memory_mb"] > 0
    metrics = [json.loads(line) for line in (demo_dir / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]  # a fresh log, not appended to an old one
    faithful = [json.loads(line) for line in (demo_dir / "grpo_faithful" / "metrics.jsonl").read_text().splitlines()]
    assert all(m["faithfulness_unscored"] == 0 and -1 <= m["reward_faithfulness"] <= 1 for m in faithful)
    assert all("reward_faithfulness" not in m for m in metrics)  # the paper's row has only its two rewards


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


def test_quarter_means():
    assert quarter_means([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]) == [0.0, 1.0, 2.0, 3.0]
    assert quarter_means([0.5, 1.5]) == [1.0]


def _stage(answered=1.0):
    side = {"answered_rate": answered}
    return {"id": dict(side), "ood": dict(side)}


def _change(low, high):
    return {"uar": {"difference": (low + high) / 2, "interval": [low, high]}}


def test_verdicts_call_a_difference_only_when_its_interval_excludes_zero():
    results = {"base": _stage(0.0), "cold_start": _stage(), "label_sft": _stage(), "grpo": _stage()}
    differences = {"grpo-label_sft": {"id": _change(0.02, 0.08), "ood": _change(-0.03, 0.04)},
                   "grpo-cold_start": {"id": _change(-0.09, -0.01), "ood": _change(0.01, 0.05)}}
    text = " ".join(verdicts(results, differences))
    assert "base wrote no emotion in <answer> tags" in text and "did not answer" in text
    assert "GRPO beats label SFT in distribution (+5.0 points UAR, 95% interval [+2.0, +8.0])" in text
    assert "GRPO and label SFT do not differ measurably out of distribution" in text
    assert "GRPO is worse than its cold start in distribution" in text
    assert "GRPO beats its cold start out of distribution" in text
    assert "cold_start wrote no" not in text


def test_seed_summary_has_mean_and_spread(tmp_path):
    from types import SimpleNamespace

    def run(seed, uar):
        stage = {k: {"uar": uar, "war": uar + 0.01} for k in ("id", "ood")}
        change = {k: {m: {"difference": 0.01 * seed} for m in ("uar", "war")} for k in ("id", "ood")}
        return SimpleNamespace(results={s.name: stage for s in STAGES}, differences={"grpo-label_sft": change},
                               seconds={"total": 600.0})

    summary = write_seed_summary(tmp_path, {0: run(0, 0.5), 1: run(1, 0.7)}, STAGES)
    assert "cue precision" not in (tmp_path / "seeds.md").read_text()  # no stage measured its claims
    assert summary["stages"]["grpo"]["id_uar"]["mean"] == pytest.approx(0.6)
    assert summary["stages"]["grpo"]["id_uar"]["sd"] == pytest.approx(0.1414, abs=1e-3)
    assert summary["differences"]["grpo-label_sft"]["ood_war"]["values"] == [0.0, 0.01]
    assert "60.0 ± 14.1" in (tmp_path / "seeds.md").read_text()


def test_verdicts_compare_the_faithful_row_with_the_papers_grpo():
    def reasoning(precision, recall, wrong):
        side = {"answered_rate": 1.0, "cue_precision": precision, "cue_recall": recall, "wrong_modality_rate": wrong,
                "cue_precision_ci": [precision - 0.02, precision + 0.02],
                "cue_recall_ci": [recall - 0.03, recall + 0.03]}
        return {"id": dict(side), "ood": dict(side)}

    results = {"grpo": reasoning(0.6, 0.65, 0.01), "grpo_faithful": reasoning(0.8, 0.6, 0.002)}
    differences = {"grpo-label_sft": {"id": _change(-0.02, 0.01), "ood": _change(-0.02, 0.01)},
                   "grpo-cold_start": {"id": _change(-0.02, 0.01), "ood": _change(-0.02, 0.01)},
                   "grpo_faithful-grpo": {"id": _change(-0.03, 0.02), "ood": _change(-0.05, -0.01)}}
    text = " ".join(verdicts(results, differences))
    assert "GRPO with the faithfulness reward and the paper's GRPO do not differ measurably in distribution" in text
    assert "GRPO with the faithfulness reward is worse than the paper's GRPO out of distribution" in text
    assert "80.0 [78.0, 82.0] / 60.0 [57.0, 63.0] with the faithfulness reward, 60.0 [58.0, 62.0] / 65.0" in text
    assert "wrong modality 0.2% against 1.0%" in text
