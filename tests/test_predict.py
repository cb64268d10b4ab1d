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
    assert code == 1  # done, but a file failed
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and sum(r["error"] is not None for r in rows) == 1
    printed = capsys.readouterr()
    assert "broken.mp4: ERROR" in printed.out and "1 of 3 files could not be read" in printed.err
    assert main(["predict", str(folder / "val_000000.mp4"), "--model", str(tiny_model), "--out",
                 str(tmp_path / "p.csv"), "--max-new-tokens", "4"]) == 0
    assert list(csv.DictReader((tmp_path / "p.csv").open()))[0]["id"].endswith("val_000000.mp4")
    assert main(["predict", str(tmp_path / "empty_dir_that_is_missing"), "--model", str(tiny_model)]) == 2


def test_an_interrupted_predict_keeps_its_rows_and_resumes_without_losing_or_repeating_one(
        world_dir, tiny_model, tmp_path, monkeypatch):
    from r1omni.predict import Predictor

    clips = sorted((world_dir / "clips" / "val").glob("*.mp4"))
    args = ["predict", *map(str, clips), "--model", str(tiny_model), "--max-new-tokens", "4", "--batch-size", "1"]
    assert main([*args, "--out", str(tmp_path / "whole.jsonl")]) == 0
    whole = (tmp_path / "whole.jsonl").read_text().splitlines()
    out = tmp_path / "p.jsonl"
    out.write_text("an older run's file\n")
    real, calls = Predictor.predict_paths, []

    def interrupted(self, paths, *rest, **kwargs):
        calls.append(paths)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, paths, *rest, **kwargs)

    monkeypatch.setattr(Predictor, "predict_paths", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--out", str(out)])
    assert out.read_text() == "an older run's file\n"  # replaced only by a whole new file
    partial = tmp_path / "p.jsonl.partial"
    assert len(partial.read_text().splitlines()) == 2
    partial.write_text(partial.read_text() + '{"id": "torn by the ki')
    assert main([*args, "--out", str(out)]) == 2  # refused: it would start over silently
    calls.clear()
    monkeypatch.setattr(Predictor, "predict_paths", real)
    assert main([*args, "--out", str(out), "--resume"]) == 0
    assert out.read_text().splitlines() == whole and not partial.exists()
    partial.write_text(whole[1] + "\n")  # a partial run over other inputs
    assert main([*args, "--out", str(out), "--resume"]) == 2


def test_predict_with_a_model_that_cannot_load_leaves_the_old_out_as_it_was(world_dir, tmp_path, capsys):
    clip = next((world_dir / "clips" / "val").glob("*.mp4"))
    out = tmp_path / "preds.jsonl"
    out.write_text('{"id": "kept"}\n')
    assert main(["predict", str(clip), "--model", str(tmp_path / "no-such-model"), "--out", str(out)]) == 2
    assert out.read_text() == '{"id": "kept"}\n' and sorted(p.name for p in tmp_path.iterdir()) == ["preds.jsonl"]


def test_predict_out_naming_a_folder_fails_before_the_model_loads(world_dir, tmp_path, capsys):
    clip = next((world_dir / "clips" / "val").glob("*.mp4"))
    assert main(["predict", str(clip), "--model", str(tmp_path / "no-model"), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_answer_probabilities_are_the_models_distribution_over_labels(world_dir, tiny_model):
    """Each label's share is P(label</answer> | prompt, reasoning up to <answer>), computed here
    token by token with plain forward passes over the whole sequence, renormalised."""
    import torch

    model = load_model(tiny_model, labels="dfew", max_new_tokens=10)
    clip = next((world_dir / "clips" / "val").glob("*.mp4"))
    media = model.read("clip", clip, clip)
    prompt = model.policy.prompt(model._messages(media.present()), media)
    completion = "<think>the brows are lowered</think>\n<answer>angry</answer>"
    shares = model.answer_probabilities(prompt, completion)
    assert list(shares) == list(model.vocab) and abs(sum(shares.values()) - 1) < 1e-4

    tokenize = lambda text: model.policy.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    head = "<think>the brows are lowered</think>\n<answer>"
    scores = []
    for label in model.vocab:
        ids = tokenize(head + label + "</answer>")
        start = next(i for i, (a, b) in enumerate(zip(tokenize(head) + [None], ids)) if a != b)
        with torch.no_grad():
            logits, _ = model.policy.completion_logits([prompt], [ids], shared_prefix=False)
        logprobs = torch.log_softmax(logits[0].float(), -1)
        scores.append(sum(logprobs[i, ids[i]].item() for i in range(start, len(ids))))
    expected = torch.softmax(torch.tensor(scores), 0).tolist()
    assert [shares[label] for label in model.vocab] == pytest.approx(expected, abs=1e-5)
    # Without an <answer>, the completion is continued with one: the same distribution as above.
    assert model.answer_probabilities(prompt, "<think>the brows are lowered</think>") == pytest.approx(shares, abs=1e-5)


def test_predict_cli_writes_probabilities_when_asked(world_dir, tiny_model, tmp_path):
    clip = next((world_dir / "clips" / "val").glob("*.mp4"))
    assert main(["predict", str(clip), "--model", str(tiny_model), "--labels", "dfew", "--probabilities",
                 "--out", str(tmp_path / "p.jsonl"), "--max-new-tokens", "6"]) == 0
    (row,) = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert set(row["probabilities"]) == {"happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"}
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-4


def test_check_claims_marks_stated_levels_against_the_measured_sound(tiny_model, tmp_path):
    from voice_levels import voice, with_voice_levels

    from r1omni.predict import Prediction

    model = load_model(with_voice_levels(tiny_model, tmp_path / "speech"), max_new_tokens=4)
    media = model.read("v", None, voice(tmp_path / "v.wav"))
    reasoning = "The voice is low-pitched and loud, with a flat pitch contour and a slow tempo. A smile."
    prediction = Prediction("v", "happy", "happy", reasoning, f"<think>{reasoning}</think>", False)
    model.check_measured_claims(prediction, media)
    assert prediction.measured["levels"] == {"pitch": 0, "loudness": 0, "variation": 0, "tempo": 0}
    marks = [(c["text"], c["holds"], c.get("measured")) for c in prediction.claims]
    assert marks == [("low-pitched", True, "low-pitched"), ("loud", False, "quiet"), ("flat", True, "flat"),
                     ("slow", True, "slow"), ("smile", False, None)]
    assert all(reasoning[c["start"] : c["end"]] == c["text"] for c in prediction.claims)
    assert prediction.claims[1]["value"] == prediction.measured["values"]["loudness"]
    plain = load_model(tiny_model)
    with pytest.raises(R1OmniError, match="not trained on measured rationales"):
        plain.check_measured_claims(prediction, media)


def test_predict_cli_check_claims(tiny_model, tmp_path, capsys):
    from voice_levels import voice, with_voice_levels

    clip = voice(tmp_path / "v.wav")
    assert main(["predict", str(clip), "--model", str(tiny_model), "--check-claims"]) == 2
    assert "was not trained on measured rationales" in capsys.readouterr().err
    speech = with_voice_levels(tiny_model, tmp_path / "speech")
    assert main(["predict", str(clip), "--model", str(speech), "--check-claims", "--max-new-tokens", "4",
                 "--out", str(tmp_path / "p.jsonl")]) == 0
    (row,) = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert row["measured"]["levels"] == {"pitch": 0, "loudness": 0, "variation": 0, "tempo": 0}
    assert isinstance(row["claims"], list)  # whatever the untrained model claimed, judged
