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


def _manifest(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(world_dir):
    """The val rows with absolute media paths, to be written to a manifest elsewhere."""
    rows = [json.loads(line) for line in (world_dir / "val.jsonl").read_text().splitlines()]
    return [{**r, **{k: str(world_dir / r[k]) for k in ("video", "audio") if r.get(k)}} for r in rows]


def test_eval_names_unreadable_rows_scores_the_rest_and_exits_1(world_dir, tiny_model, tmp_path, capsys):
    rows = _rows(world_dir)
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    rows[0] = {**rows[0], "id": "bad_row", "video": str(broken), "audio": str(broken)}
    out = tmp_path / "eval"
    code = main(["eval", "--manifest", str(_manifest(tmp_path / "m.jsonl", rows)), "--model", str(tiny_model),
                 "--out", str(out), "--max-new-tokens", "4"])
    assert code == 1
    assert "1 of 4 rows left out" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 3 and list(metrics["left_out"]) == ["bad_row"]
    assert "bad_row: " in (out / "report.md").read_text()


def test_eval_of_a_manifest_with_no_readable_row_fails(world_dir, tiny_model, tmp_path, capsys):
    rows = [{**r, "video": str(tmp_path / "gone.mp4"), "audio": str(tmp_path / "gone.mp4")} for r in _rows(world_dir)]
    code = main(["eval", "--manifest", str(_manifest(tmp_path / "m.jsonl", rows)), "--model", str(tiny_model),
                 "--max-new-tokens", "4"])
    assert code == 2
    err = capsys.readouterr().err
    assert "none of the 4 rows could be read" in err and "gone.mp4: file not found" in err


def test_ablation_leaves_silent_clips_out_of_the_audio_score(world_dir, tiny_model, tmp_path, make_clip, capsys):
    rows = _rows(world_dir)
    silent = make_clip("silent.mp4", seconds=1.0, audio=False)
    rows[1] = {**rows[1], "id": "silent_row", "video": str(silent), "audio": str(silent)}
    out = tmp_path / "eval"
    code = main(["eval", "--manifest", str(_manifest(tmp_path / "m.jsonl", rows)), "--model", str(tiny_model),
                 "--out", str(out), "--ablate", "--max-new-tokens", "4"])
    assert code == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["audio"]["n"] == 3 and "has no audio" in metrics["audio"]["left_out"]["silent_row"]
    assert metrics["video"]["n"] == 4 and not metrics["video"]["left_out"]


def test_report_shows_no_recall_for_classes_without_clips(world_dir, tiny_model, tmp_path):
    from r1omni.eval.metrics import score
    from r1omni.eval.reports import markdown_report

    scores = score(["happy", "happy", "sad"], ["happy", None, "sad"], classes=["happy", "sad", "fear"])
    report = markdown_report({"video_audio": scores}, "t")
    assert "| video_audio | 50.0% | 100.0% | — |" in report


def test_eval_out_naming_a_file_is_refused(world_dir, tiny_model, tmp_path, capsys):
    taken = tmp_path / "taken.txt"
    taken.write_text("x")
    assert main(["eval", "--manifest", str(world_dir / "val.jsonl"), "--model", str(tiny_model),
                 "--out", str(taken)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_eval_measure_scores_stated_levels_against_the_measured_sound(tiny_model, tmp_path, capsys):
    from voice_levels import voice, with_voice_levels

    rows = [{"id": f"v{i}", "label": label, "dataset": "test", "audio": str(voice(tmp_path / f"v{i}.wav", hz))}
            for i, (hz, label) in enumerate([(120, "sad"), (180, "happy"), (240, "angry")])]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    speech = with_voice_levels(tiny_model, tmp_path / "speech")
    assert main(["eval", "--manifest", str(manifest), "--model", str(speech), "--measure", "--max-new-tokens", "6",
                 "--out", str(tmp_path / "out")]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    faith = metrics["cue_faithfulness"]
    assert faith["n"] == 3 and set(faith["per_attribute"]) == {"pitch", "loudness", "variation", "tempo"}
    predictions = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert all(p["measured"]["levels"]["pitch"] == 0 and isinstance(p["claims"], list) for p in predictions)
    # Without terciles in the model, the manifest's own thirds: one clip per level of pitch.
    assert main(["eval", "--manifest", str(manifest), "--model", str(tiny_model), "--measure", "--modal", "audio",
                 "--max-new-tokens", "6", "--out", str(tmp_path / "own")]) == 0
    assert "against this manifest's own terciles" in capsys.readouterr().out
    own = [json.loads(line) for line in (tmp_path / "own" / "predictions.jsonl").read_text().splitlines()]
    assert [p["measured"]["levels"]["pitch"] for p in own] == [0, 1, 2]


def test_an_interrupted_eval_leaves_old_outputs_whole_and_resumes_to_the_same_rows(world_dir, tiny_model, tmp_path,
                                                                                   monkeypatch):
    import pytest

    from r1omni.predict import Predictor

    args = ["eval", "--manifest", str(world_dir / "val.jsonl"), "--model", str(tiny_model), "--ablate",
            "--max-new-tokens", "4", "--labels", "dfew", "--batch-size", "2"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "eval"
    assert main([*args, "--out", str(out), "--max-new-tokens", "2"]) == 0  # an older evaluation in the folder
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real, made = Predictor.predict_clips, []

    def interrupted(self, *rest, **kwargs):
        for prediction in real(self, *rest, **kwargs):
            if len(made) == 7:  # the second setting's fourth row, in its second batch
                raise KeyboardInterrupt
            made.append(prediction)
            yield prediction

    monkeypatch.setattr(Predictor, "predict_clips", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--out", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in before} == before  # none mixed with new
    assert main([*args, "--out", str(out)]) == 2  # refused: --resume or start over knowingly
    monkeypatch.setattr(Predictor, "predict_clips", real)
    assert main([*args, "--out", str(out), "--resume"]) == 0
    for mode in ("video_audio", "video", "audio"):
        name = f"predictions_{mode}.jsonl"
        assert (out / name).read_text() == (tmp_path / "whole" / name).read_text(), mode
    assert (out / "metrics.json").read_text() == (tmp_path / "whole" / "metrics.json").read_text()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "whole").iterdir())


def test_an_eval_killed_while_putting_its_outputs_in_place_resumes(world_dir, tiny_model, tmp_path, monkeypatch):
    import pytest

    import r1omni.eval.run as run

    args = ["eval", "--manifest", str(world_dir / "val.jsonl"), "--model", str(tiny_model), "--ablate",
            "--max-new-tokens", "4", "--labels", "dfew"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    real, plots = run.plot_confusion, []

    def killed_on_the_second(*rest, **kwargs):
        plots.append(1)
        if len(plots) == 2:  # two settings' predictions are in place, the third not yet
            raise KeyboardInterrupt
        return real(*rest, **kwargs)

    monkeypatch.setattr(run, "plot_confusion", killed_on_the_second)
    out = tmp_path / "eval"
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--out", str(out)])
    assert (out / "predictions_video.jsonl").is_file() and (out / "predictions_audio.jsonl.partial").is_file()
    monkeypatch.setattr(run, "plot_confusion", real)
    assert main([*args, "--out", str(out), "--resume"]) == 0
    for name in ("predictions_video_audio.jsonl", "predictions_video.jsonl", "predictions_audio.jsonl",
                 "metrics.json"):
        assert (out / name).read_text() == (tmp_path / "whole" / name).read_text(), name
