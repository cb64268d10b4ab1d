"""r1omni eval --manifest --model: predictions, metrics, report, plots, ablation."""

import json

from r1omni.cli import main


def test_eval_with_a_model_and_ablation(world_dir, tiny_model, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["eval", "--manifest", str(world_dir / "val.jsonl"), "--model", str(tiny_model), "--out", str(out),
                 "--ablate", "--max-new-tokens", "8", "--labels", "dfew"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"video_audio", "video", "audio"}
    for mode, m in metrics.items():
        assert m["n"] == 4 and 0 <= m["uar"] <= 1 and m["cue_faithfulness"]["n"] == 4, mode
        rows = [json.loads(line) for line in (out / f"predictions_{mode}.jsonl").read_text().splitlines()]
        assert len(rows) == 4 and all("completion" in r and "cues" in r for r in rows)
        assert (out / f"confusion_matrix_{mode}.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "| video_audio | 4 |" in report and "| audio | 4 |" in report and "Recall per class" in report
    assert (out / "per_class_recall.png").is_file()
    assert "UAR" in capsys.readouterr().out


def test_eval_needs_predictions_or_a_manifest_and_model(tmp_path, capsys):
    assert main(["eval"]) == 2
    assert "--manifest M with --model DIR" in capsys.readouterr().err
