"""Predicting with a saved model: Python API and CLI, bad files reported, the rest go on."""

import csv
import json

import pytest

from r1omni import load_model
from r1omni.cli import main
from r1omni.errors import R1OmniError


def test_predict_api_returns_reasoning_answer_and_completion(world_dir, tiny_model):
    model = load_model(tiny_model, labels="dfew", max_new_tokens=12)
    clip = next((world_dir / "clips" / "val").glob("*.mp4"))
    result = model.predict(clip)
    assert result.id == str(clip) and isinstance(result.completion, str) and result.completion
    assert result.answer is None or result.answer in ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
    audio_only = model.predict(clip, modalities=("audio",))
    assert audio_only.error is None
    with pytest.raises(R1OmniError, match="modalities must be a non-empty subset"):
        model.predict(clip, modalities=("smell",))


def test_answers_are_parsed_and_out_of_vocabulary_flagged(tiny_model):
    model = load_model(tiny_model, labels="dfew")
    assert model._result("x", "<think>brows down</think><answer>Anger</answer>").answer == "angry"
    flagged = model._result("x", "<think>t</think><answer>contempt</answer>")
    assert flagged.answer is None and flagged.raw_answer == "contempt" and flagged.out_of_vocabulary
    nothing = model._result("x", "no tags")
    assert nothing.answer is None and not nothing.out_of_vocabulary and nothing.reasoning is None


def test_predict_cli_on_a_folder_with_a_broken_file(world_dir, tiny_model, tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    for clip in sorted((world_dir / "clips" / "val").glob("*.mp4"))[:2]:
        (folder / clip.name).write_bytes(clip.read_bytes())
    (folder / "broken.mp4").write_text("not a video")
    code = main(["predict", str(folder), "--model", str(tiny_model), "--out", str(tmp_path / "p.jsonl"),
                 "--max-new-tokens", "8"])
    assert code == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and sum(r["error"] is not None for r in rows) == 1
    assert "broken.mp4: ERROR" in capsys.readouterr().out
    assert main(["predict", str(folder / "val_000000.mp4"), "--model", str(tiny_model), "--out",
                 str(tmp_path / "p.csv"), "--max-new-tokens", "4"]) == 0
    assert list(csv.DictReader((tmp_path / "p.csv").open()))[0]["id"].endswith("val_000000.mp4")
    assert main(["predict", str(tmp_path / "empty_dir_that_is_missing"), "--model", str(tiny_model)]) == 2
