"""`r1omni data mix`: rows of several manifests in one, a split kept, classes capped per corpus."""

from dataclasses import replace

import pytest

from r1omni.cli import main
from r1omni.data import read_manifest, write_manifest
from r1omni.data.manifest import ClipRow
from r1omni.data.mix import mix_manifests
from r1omni.errors import ManifestError


def faces():
    return [ClipRow(f"f{i}", "happy" if i % 3 else "sad", "fer2013", video=f"/f{i}.jpg",
                    split="train" if i < 30 else "test") for i in range(40)]


def voices():
    return [ClipRow(f"v{i}", "angry", "emodb", audio=f"/v{i}.wav", speaker="03") for i in range(5)]


def test_split_and_cap_per_corpus_and_class():
    rows = mix_manifests([faces(), voices()], split=None, per_class=4, seed=1)
    assert sum(r.dataset == "emodb" for r in rows) == 4
    assert {(r.dataset, r.label) for r in rows} == {("fer2013", "happy"), ("fer2013", "sad"), ("emodb", "angry")}
    assert mix_manifests([faces(), voices()], per_class=4, seed=1) == rows  # the seed fixes the draw
    filled = mix_manifests([faces(), [replace(voices()[0], rationale="A high voice.")]], fill_rationale="A face.")
    assert {r.rationale for r in filled} == {"A face.", "A high voice."}
    train = mix_manifests([faces()], split="train")
    assert len(train) == 30 and all(r.split == "train" for r in train)


def test_a_label_set_keeps_only_its_classes():
    bored = [ClipRow(f"b{i}", "boredom", "emodb", audio=f"/b{i}.wav", speaker="03") for i in range(3)]
    assert len(mix_manifests([voices() + bored])) == 8
    shared = mix_manifests([voices() + bored, faces()], labels="emodb&ravdess")  # boredom is Emo-DB's alone
    assert [r.id for r in shared] == [f"v{i}" for i in range(5)] + [f"f{i}" for i in range(40)]
    assert {r.label for r in mix_manifests([faces(), voices()], labels="ckplus&mer2023")} == {"angry", "happy", "sad"}
    with pytest.raises(ManifestError, match="labels='dfew&emodb'"):
        mix_manifests([bored], labels="dfew&emodb")


def test_clashing_ids_and_empty_mixes_are_errors():
    with pytest.raises(ManifestError, match="occur twice"):
        mix_manifests([voices(), voices()])
    with pytest.raises(ManifestError, match="no row"):
        mix_manifests([voices()], split="train")


def test_cli_writes_the_mix_and_counts_it(tmp_path, capsys):
    write_manifest(faces(), tmp_path / "faces.jsonl")
    write_manifest(voices(), tmp_path / "voices.jsonl")
    assert main(["data", "mix", "--manifest", str(tmp_path / "faces.jsonl"), "--manifest",
                 str(tmp_path / "voices.jsonl"), "--per-class", "3", "--out", str(tmp_path / "mix.jsonl")]) == 0
    assert len(read_manifest(tmp_path / "mix.jsonl")) == 9
    assert "wrote 9 rows" in capsys.readouterr().out
