"""scripts/alignment_head.py: a speech model's label-alignment head, scored beside its answers."""

import json
import sys
from dataclasses import replace

import torch
from script_helpers import load_script

from r1omni.data import read_manifest, write_manifest
from r1omni.eval.metrics import uar
from r1omni.models import ComposedPolicy
from r1omni.predict import load_model
from r1omni.prompts import build_messages
from r1omni.train.alignment import alignment_loss, label_words, media_mean


def test_the_head_answers_the_label_the_alignment_loss_is_lowest_for(world_dir, tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    model = ComposedPolicy.tiny_variants()["smol-shape"]().save_pretrained(tmp_path / "model")
    rows = [replace(r, speaker=str(i % 2)) for i, r in enumerate(read_manifest(world_dir / "coldstart.jsonl"))]
    manifest = write_manifest(rows, tmp_path / "speakers.jsonl")
    script = load_script("alignment_head")
    truth, answers = script.head_answers(str(model), str(manifest), "dfew")
    assert truth == [r.label for r in rows] and len(answers) == len(rows)

    # The same answers from the training loss itself: the label whose alignment loss is lowest,
    # each speaker standardised by their own statistics, over what the model reads of each clip.
    predictor = load_model(model, device="cpu")
    predictor.standardize_on(rows, by="speaker")
    words = label_words(predictor.policy, "dfew")
    expected = []
    with torch.no_grad():
        for row in rows:
            media = predictor.read(row.id, row.video, row.audio)
            mean = media_mean(predictor.policy.prompt(build_messages("r1omni", media.present()), media))[None]  # [1, H]
            expected.append(min(words[0], key=lambda label: alignment_loss(mean, [label], words).item()))
    assert answers == expected
    assert len(set(answers)) > 1  # the untrained head does not answer one label for every clip

    monkeypatch.setattr(sys, "argv", ["alignment_head.py", "--model", str(model), "--manifest", str(manifest),
                                      "--labels", "dfew"])
    script.main()
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(printed)
    assert result["n"] == len(rows) and sum(result["answers"].values()) == len(rows)
    assert 0 <= result["uar_ci"][0] <= result["uar"] <= result["uar_ci"][1] <= 1


def test_a_warm_up_fits_the_head_to_its_training_clips(world_dir, tmp_path, monkeypatch):
    """--warm-up trains the projectors as the cold start's warm-up does before scoring the head:
    warmed up on the clips it is scored on, the head answers their labels far better than untrained."""
    monkeypatch.setenv("R1OMNI_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = ComposedPolicy.tiny_variants()["smol-shape"]().save_pretrained(tmp_path / "model")
    rows = [replace(r, speaker=str(i % 2)) for i, r in enumerate(read_manifest(world_dir / "coldstart.jsonl"))]
    manifest = str(write_manifest(rows, tmp_path / "speakers.jsonl"))
    script = load_script("alignment_head")
    truth, untrained = script.head_answers(str(model), manifest, "dfew")
    _, warmed = script.head_answers(str(model), manifest, "dfew", warm_up=manifest, epochs=30, lr=1e-2)
    assert uar(truth, warmed) >= 0.9 > uar(truth, untrained) + 0.2
    assert any((tmp_path / "cache").iterdir())  # the frozen towers' features were cached, not recomputed each epoch
