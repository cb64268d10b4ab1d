import json

import pytest

from r1omni.data.manifest import ClipRow, read_manifest, write_manifest
from r1omni.errors import ManifestError


def test_round_trip_and_relative_paths(tmp_path):
    rows = [ClipRow(id="a", label="happy", dataset="x", video="clips/a.mp4", audio="clips/a.mp4",
                    speaker="s1", fold=2, rationale="Smiling.", cues={"au12": 0.8}),
            ClipRow(id="b", label="fear", dataset="x", audio="/abs/b.wav", split="test")]
    path = write_manifest(rows, tmp_path / "m.jsonl")
    first = json.loads(path.read_text().splitlines()[0])
    assert "split" not in first and first["cues"] == {"au12": 0.8}  # None fields are left out
    read = read_manifest(path)
    assert read[0].video == str(tmp_path / "clips/a.mp4") and read[1].audio == "/abs/b.wav"
    assert read[0].modalities == ("video", "audio") and read[1].modalities == ("audio",)
    assert (read[0].fold, read[1].split, read[0].rationale) == (2, "test", "Smiling.")


@pytest.mark.parametrize("line, message", [
    ("not json", "m.jsonl:1: not valid JSON"),
    ('["a"]', "must be a JSON object"),
    ('{"id": "a", "dataset": "x", "audio": "a.wav"}', "missing required field 'label'"),
    ('{"id": "a", "label": "happy", "dataset": "x"}', "has neither 'video' nor 'audio'"),
    ('{"id": "a", "label": "glee", "dataset": "x", "audio": "a.wav"}', "unknown label 'glee'"),
    ('{"id": "a", "label": "happy", "dataset": "x", "audio": "a.wav", "colour": 1}', r"unknown fields \['colour'\]"),
    # Wrong field types (issue 14): named, not a traceback later.
    ('{"id": [1], "label": "happy", "dataset": "x", "audio": "a.wav"}', "field 'id' must be a string or an integer"),
    ('{"id": "a", "label": "happy", "dataset": "x", "video": 5}', "field 'video' must be a string, got 5"),
    ('{"id": "a", "label": "happy", "dataset": "x", "audio": "a.wav", "cues": "abc"}', "field 'cues' must be an obj"),
    ('{"id": "a", "label": 3, "dataset": "x", "audio": "a.wav"}', "field 'label' must be a string"),
    ('{"id": "a", "label": "happy", "dataset": "x", "audio": "a.wav", "fold": true}', "field 'fold' must be an int"),
    ("[" * 100_000 + "]" * 100_000, "m.jsonl:1: JSON nested too deeply"),
])
def test_malformed_rows_name_the_line(tmp_path, line, message):
    path = tmp_path / "m.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ManifestError, match=message):
        read_manifest(path)


def test_duplicate_ids_and_missing_file(tmp_path):
    row = '{"id": "a", "label": "happy", "dataset": "x", "audio": "a.wav"}\n'
    path = tmp_path / "m.jsonl"
    path.write_text(row + "\n" + row)
    with pytest.raises(ManifestError, match="m.jsonl:3: duplicate id 'a'"):
        read_manifest(path)
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "none.jsonl")


def test_encoding_bom_blank_and_numeric_ids(tmp_path):
    row = '{"id": 7, "label": "happy", "dataset": "x", "audio": "a.wav", "speaker": 12}'
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + row.encode() + b"\n")  # a byte-order mark, as Notepad writes
    (read,) = read_manifest(path)
    assert (read.id, read.speaker) == ("7", "12")
    path.write_bytes(row.encode() + b"\n" + '{"id": "caf\u00e9"}'.encode("latin-1") + b"\n")
    with pytest.raises(ManifestError, match="m.jsonl:2: not UTF-8 text"):
        read_manifest(path)
    path.write_text("\n  \n")
    with pytest.raises(ManifestError, match="manifest has no rows"):
        read_manifest(path)


def test_a_manifest_is_written_whole_or_not_at_all(tmp_path):
    path = write_manifest([ClipRow("a", "happy", "ravdess", audio="/a.wav")], tmp_path / "m.jsonl")

    def rows_then_a_crash():
        yield ClipRow("b", "sad", "ravdess", audio="/b.wav")
        raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError, match="killed"):
        write_manifest(rows_then_a_crash(), path)
    assert [r.id for r in read_manifest(path)] == ["a"]  # the old manifest, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]  # no temporary left
