import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, recall_score

from r1omni.cli import main
from r1omni.errors import ManifestError
from r1omni.eval.metrics import confusion_matrix, per_class_recall, score, uar, war
from r1omni.eval.predictions import score_predictions_file

CLASSES = ["happy", "sad", "angry", "neutral"]


def sklearn_uar(labels, predictions):
    """The reference: macro recall over the ground-truth classes only (REFERENCE.md's pitfall)."""
    return recall_score(
        labels, [p if p is not None else "<none>" for p in predictions],
        labels=sorted(set(labels)), average="macro", zero_division=0,
    )


def test_toy_case_from_the_reference_unparsable_never_adds_a_class():
    labels = ["happy"] * 5 + ["sad"] * 3 + ["angry"] * 7
    predictions = ["happy"] * 4 + [None] + ["sad"] * 2 + ["excited"] + ["angry"] * 3 + ["sad"] * 4
    assert uar(labels, predictions) == pytest.approx(np.mean([4 / 5, 2 / 3, 3 / 7]))
    assert uar(labels, predictions) == pytest.approx(sklearn_uar(labels, predictions))
    naive = recall_score(labels, [str(p) for p in predictions], average="macro", zero_division=0)
    assert naive < uar(labels, predictions)  # the pitfall lowers UAR
    assert war(labels, predictions) == pytest.approx(9 / 15)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(CLASSES), st.sampled_from(CLASSES + [None, "contempt"])),
                min_size=1, max_size=60))
def test_uar_war_match_scikit_learn(pairs):
    labels, predictions = [list(x) for x in zip(*pairs)]
    assert uar(labels, predictions) == pytest.approx(sklearn_uar(labels, predictions))
    assert war(labels, predictions) == pytest.approx(
        accuracy_score(labels, [p if p is not None else "<none>" for p in predictions]))


def test_per_class_recall_and_confusion_matrix():
    labels = ["happy", "happy", "sad", "sad", "sad"]
    predictions = ["happy", None, "sad", "happy", "contempt"]
    assert per_class_recall(labels, predictions) == {"happy": 0.5, "sad": 1 / 3}
    matrix = confusion_matrix(labels, predictions, ["happy", "sad"])
    assert matrix.tolist() == [[1, 0, 1], [1, 1, 1]]
    assert matrix.sum() == len(labels)
    with pytest.raises(ValueError, match="not among the classes"):
        confusion_matrix(labels, predictions, ["happy"])
    with pytest.raises(ValueError, match="2 labels but 1"):
        uar(["happy", "sad"], ["happy"])


def test_score_rates():
    scores = score(["happy", "sad"], ["happy", None],
                   completions=["<think>a</think><answer>happy</answer>", "sad"])
    assert scores.format_rate == 0.5 and scores.unparsable_rate == 0.5 and scores.n == 2


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_cli_writes_metrics_and_confusion_png(tmp_path, capsys):
    rows = [
        {"label": "happy", "completion": "<think>smile</think><answer>Happiness</answer>", "dataset": "dfew"},
        {"label": "sad", "completion": "<think>tears</think><answer>sad</answer>", "dataset": "dfew"},
        {"label": "sad", "completion": "I think sad", "dataset": "dfew"},
        {"label": "angry", "completion": "<think>x</think><answer>happy or angry</answer>", "dataset": "dfew"},
    ]
    path = write_jsonl(tmp_path / "preds.jsonl", rows)
    assert main(["eval", "--predictions", str(path), "--out", str(tmp_path / "out")]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"uar", "war", "per_class", "n", "format_rate", "unparsable_rate"} <= set(metrics)
    assert metrics["n"] == 4
    assert metrics["war"] == pytest.approx(0.5)
    assert metrics["uar"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics["format_rate"] == pytest.approx(0.75)
    assert metrics["unparsable_rate"] == pytest.approx(0.5)
    assert metrics["classes"][:3] == ["happy", "sad", "neutral"]  # DFEW order
    assert (tmp_path / "out" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "UAR" in printed and "50.00%" in printed


def test_eval_with_bare_predictions(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"label": "Fearful", "prediction": "fear"},
                                               {"label": "calm", "prediction": "CALM"}])
    scores = score_predictions_file(path)
    assert scores.war == 1.0 and scores.format_rate is None


@pytest.mark.parametrize("content, message", [
    ("{not json\n", "p.jsonl:1: not valid JSON"),
    ('{"prediction": "happy"}\n', "p.jsonl:1: row has no 'label'"),
    ('{"label": "happy"}\n', "neither 'prediction' nor 'completion'"),
    ('{"label": "happy", "prediction": "x"}\n{"label": "excited", "prediction": "x"}\n',
     "p.jsonl:2: unknown label 'excited'"),
    ("\n", "predictions file has no rows"),
    ('{"label": ["happy"], "prediction": "happy"}\n', "field 'label' must be a string"),
    ('{"label": "happy", "completion": 5}\n', "field 'completion' must be a string"),
    ('{"label": "happy", "prediction": "happy", "cues": "abc"}\n', "field 'cues' must be an object"),
])
def test_malformed_prediction_files(tmp_path, content, message, capsys):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(ManifestError, match=message):
        score_predictions_file(path)
    assert main(["eval", "--predictions", str(path)]) == 2
    assert message.split(": ")[-1] in capsys.readouterr().err


def test_missing_predictions_file(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        score_predictions_file(tmp_path / "nope.jsonl")


def test_eval_reports_cue_faithfulness_when_rows_carry_cues(tmp_path, capsys):
    cues = {"face_cues": ["brow_lower", "lip_press"], "voice_cues": ["loud", "tense"]}
    rows = [
        {"label": "angry", "cues": cues,
         "completion": "<think>Furrowed brows and a loud voice.</think><answer>angry</answer>"},
        {"label": "angry", "cues": cues,
         "completion": "<think>A smile and raised eyebrows.</think><answer>happy</answer>"},
        {"label": "angry", "cues": cues,
         "completion": "<think>Acoustically, the speech has pressed lips.</think><answer>angry</answer>"},
        {"label": "angry", "cues": cues, "completion": "<think>I cannot tell.</think><answer>angry</answer>"},
    ]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    assert main(["eval", "--predictions", str(path), "--out", str(tmp_path / "out")]) == 0
    faith = json.loads((tmp_path / "out" / "metrics.json").read_text())["cue_faithfulness"]
    assert faith["precision"] == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3 clips with claims
    assert faith["recall"] == pytest.approx(0.125)  # (2/4 + 0 + 0 + 0) / 4
    assert faith["no_claims_rate"] == pytest.approx(0.25) and faith["n"] == 4 and faith["claims"] == 5
    assert faith["wrong_modality_rate"] == pytest.approx(1 / 5)
    assert faith["per_modality"]["face"] == {"claims": 4, "precision": 0.25, "measured": 8, "recall": 0.125}
    assert faith["per_cue"]["smile"]["precision"] == 0.0 and faith["per_cue"]["loud"]["recall"] == 0.25
    assert faith["precision_ci"][0] <= faith["precision"] <= faith["precision_ci"][1]
    assert "claim precision" in capsys.readouterr().out
    without = score_predictions_file(write_jsonl(tmp_path / "q.jsonl", [{"label": "sad", "prediction": "sad"}]))
    assert without.faithfulness is None


def test_faithfulness_of_stated_voice_levels_per_attribute():
    from r1omni.claims import measurement_of
    from r1omni.eval.metrics import faithfulness_summary

    def clip(pitch, loudness):
        meta = {"acoustics": {"pitch": {"value": 1.0, "level": pitch}, "loudness": {"value": 1.0, "level": loudness}}}
        return measurement_of(meta=meta, modalities=("audio",))

    texts = ["<think>The voice is high-pitched and loud.</think>", "<think>The voice is low-pitched.</think>",
             "<think>Hard to say.</think>"]
    faith = faithfulness_summary(texts, [clip(2, 0), clip(2, 1), clip(0, 0)])
    pitch, loudness = faith["per_attribute"]["pitch"], faith["per_attribute"]["loudness"]
    assert pitch["stated"] == 2 and pitch["agreement"] == 0.5 and pitch["stated_rate"] == pytest.approx(2 / 3)
    assert loudness["stated"] == 1 and loudness["agreement"] == 0.0
    assert 0 <= pitch["agreement_ci"][0] <= 0.5 <= pitch["agreement_ci"][1] <= 1
    assert faith["per_modality"]["voice"]["measured"] == 6 and faith["no_claims_rate"] == pytest.approx(1 / 3)


def test_bootstrap_resamples_score_as_uar_and_war_do():
    from r1omni.eval.metrics import _resampled_scores

    rng = np.random.default_rng(1)
    labels = list(rng.choice(CLASSES, 60))
    predictions = [g if rng.random() < 0.5 else rng.choice(CLASSES + [None]) for g in labels]
    draws = rng.integers(0, 60, (20, 60))
    uars, wars = _resampled_scores(labels, predictions, draws)
    for row, u, w in zip(draws, uars, wars):
        picked = [labels[i] for i in row], [predictions[i] for i in row]
        assert u == pytest.approx(uar(*picked)) and w == pytest.approx(war(*picked))


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_more_clips():
    from r1omni.eval.metrics import bootstrap_intervals

    rng = np.random.default_rng(2)
    widths = []
    for n in (100, 1600):
        labels = list(rng.choice(CLASSES, n))
        predictions = [g if rng.random() < 0.6 else rng.choice(CLASSES) for g in labels]
        intervals = bootstrap_intervals(labels, predictions)
        assert intervals["uar"][0] < uar(labels, predictions) < intervals["uar"][1]
        assert intervals["war"][0] < war(labels, predictions) < intervals["war"][1]
        widths.append(intervals["uar"][1] - intervals["uar"][0])
    assert widths[1] < widths[0] / 2.5  # about 1/sqrt(16) as wide


def test_paired_difference_of_equal_and_of_better_predictions():
    from r1omni.eval.metrics import paired_difference

    rng = np.random.default_rng(3)
    labels = list(rng.choice(CLASSES, 400))
    weak = [g if rng.random() < 0.4 else rng.choice(CLASSES) for g in labels]
    same = paired_difference(labels, weak, weak)
    assert same["uar"] == {"difference": 0.0, "interval": [0.0, 0.0]}
    strong = [g if rng.random() < 0.9 else rng.choice(CLASSES) for g in labels]
    better = paired_difference(labels, strong, weak)
    assert better["uar"]["difference"] == pytest.approx(uar(labels, strong) - uar(labels, weak))
    assert 0 < better["uar"]["interval"][0] < better["uar"]["difference"] < better["uar"]["interval"][1]


def test_conflict_accuracy_and_reasoning_that_names_another_emotion():
    completions = ["<think>The voice trembles: fear.</think><answer>disgust</answer>",  # names fear, answers disgust
                   "<think>A smile, but an angry voice.</think><answer>angry</answer>",
                   "<think>Lowered brows.</think><answer>sad</answer>",  # names no emotion
                   "no tags at all"]
    labels, predictions = ["disgust", "angry", "happy", "sad"], ["disgust", "angry", "sad", None]
    cues = [{"conflict": True}, {"conflict": True}, {"conflict": False}, None]
    scores = score(labels, predictions, completions, CLASSES + ["disgust"], cues)
    assert scores.conflict_n == 2 and scores.conflict_war == 1.0
    assert scores.mismatch_rate == pytest.approx(1 / 3)
    assert score(labels, predictions).mismatch_rate is None
