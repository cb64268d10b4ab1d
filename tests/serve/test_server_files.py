"""A visitor reads only what they uploaded, or what lies in the operator's data folder: probes for
the server's other files get the same answer whether the file exists or not, and never its content."""

import json
import os
import tracemalloc

import pytest

from r1omni import load_model
from r1omni.data.manifest import read_manifest
from r1omni.errors import ManifestError, R1OmniError
from r1omni.serve.access import check_exposure, is_loopback, model_label, read_logins
from r1omni.serve.analysis import ServeLimits, analyse_batch
from r1omni.serve.files import NOT_OFFERED, OUTSIDE, ServerFiles, sweep

PROBES = ["/etc/passwd", "/root/.ssh/id_rsa", "/no/such/file.jsonl", "../../etc/passwd", "/etc"]


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return load_model(tiny_model, labels="dfew", max_new_tokens=4)


def _answer(predictor, tmp_path, *args, **kwargs) -> str:
    try:
        analyse_batch(predictor, *args, "video", ServeLimits(), tmp_path / "out", **kwargs)
    except R1OmniError as err:
        return str(err)
    raise AssertionError("the probe was answered with predictions")


def test_without_a_data_folder_no_manifest_path_is_read(predictor, tmp_path):
    answers = {probe: _answer(predictor, tmp_path, [], probe) for probe in PROBES}
    assert set(answers.values()) == {NOT_OFFERED}


def test_paths_outside_the_data_folder_get_one_answer_whether_or_not_they_exist(predictor, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "escape").symlink_to("/etc")
    (tmp_path / "secret.jsonl").write_text(json.dumps({"id": "s", "label": "happy", "dataset": "secret",
                                                       "video": "/etc/hostname"}) + "\n")
    server = ServerFiles(root)
    probes = PROBES + ["escape/passwd", "../secret.jsonl", str(tmp_path / "secret.jsonl"), "missing.jsonl"]
    answers = {probe: _answer(predictor, tmp_path, [], probe, server=server) for probe in probes}
    assert all(answer == f"{probe}: {OUTSIDE}" for probe, answer in answers.items()), answers
    told = [answer.removeprefix(probe) for probe, answer in answers.items()]  # beyond the visitor's own words
    assert not any(str(tmp_path) in answer or "root:" in answer for answer in told)


def test_rows_whose_media_lie_outside_are_refused_without_opening_them(predictor, tmp_path, world_dir):
    root = tmp_path / "data"
    root.mkdir()
    clip = next((world_dir / "clips" / "val").glob("*.mp4"))
    (root / "clip.mp4").write_bytes(clip.read_bytes())
    (root / "escape").symlink_to(tmp_path)
    (tmp_path / "big.mp4").write_bytes(b"x" * 1000)
    rows = [{"id": "inside", "label": "happy", "dataset": "d", "video": "clip.mp4"},
            {"id": "missing", "label": "happy", "dataset": "d", "video": "gone.mp4"}]
    rows += [{"id": f"probe{i}", "label": "sad", "dataset": "d", "video": path} for i, path in
             enumerate(["/etc/passwd", "/no/such.mp4", "../big.mp4", "escape/big.mp4", "/etc"])]
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    view = analyse_batch(predictor, [], "m.jsonl", "video", ServeLimits(), out, server=ServerFiles(root))
    errors = {p.id: p.error for p in view.predictions}
    assert errors["inside"] is None and errors["missing"].startswith("gone.mp4: ")  # inside: the operator's files
    probes = [errors[f"probe{i}"] for i in range(5)]
    assert probes == [f"{name}: {OUTSIDE}" for name in ["passwd", "such.mp4", "big.mp4", "big.mp4", "etc"]]
    written = (out / "predictions.jsonl").read_text() + (out / "predictions.csv").read_text()
    assert str(tmp_path) not in written and str(root) not in written


def test_an_uploaded_manifest_finds_its_media_among_the_uploads_only(predictor, tmp_path):
    manifest = tmp_path / "labels.jsonl"
    manifest.write_text("".join(json.dumps({"id": name, "label": "happy", "dataset": "d", "video": path}) + "\n"
                                for name, path in [("a", "/etc/passwd"), ("b", "/no/such.mp4"),
                                                   ("c", str(manifest))]))
    view = analyse_batch(predictor, [str(manifest)], None, "video", ServeLimits(), tmp_path / "out")
    assert [p.error for p in view.predictions] == [f"{n}: not among the uploaded files"
                                                   for n in ("passwd", "such.mp4", "labels.jsonl")]


def test_a_manifest_over_the_cap_is_refused_while_it_streams(tmp_path):
    line = tmp_path / "one_line.jsonl"
    line.write_bytes(b'{"id": "' + b"x" * (9 * 2**20) + b'"}')  # 9 MiB, no newline
    tracemalloc.start()
    with pytest.raises(ManifestError, match="longer than 1048576 bytes, over the cap"):
        read_manifest(line, max_bytes=2**20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB held to refuse a 9 MiB line against a 1 MiB cap"
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": str(i), "label": "happy", "dataset": "d", "video": "v.mp4"}) + "\n"
                            for i in range(5)))
    assert len(read_manifest(rows, max_rows=5)) == 5
    with pytest.raises(ManifestError, match="more than 4 rows, over the cap"):
        read_manifest(rows, max_rows=4)


def test_the_page_listens_beyond_this_machine_only_behind_a_login_or_knowingly(tmp_path):
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.org"]))
    check_exposure("127.0.0.1", False, False)
    with pytest.raises(R1OmniError, match="--host 0.0.0.0 opens the page beyond this machine: add --auth"):
        check_exposure("0.0.0.0", False, False)
    check_exposure("0.0.0.0", True, False)
    check_exposure("0.0.0.0", False, True)
    logins = tmp_path / "logins"
    logins.write_text("# who may use the page\nada:secret one\n\nbob:p:w\n")
    assert read_logins(logins) == [("ada", "secret one"), ("bob", "p:w")]
    logins.write_text("ada:hunter2\nnopassword\n")
    with pytest.raises(R1OmniError, match=r"logins:2: not user:password") as err:
        read_logins(logins)
    assert "hunter2" not in str(err.value)


def test_the_header_names_the_model_not_its_path(tmp_path):
    assert model_label(tmp_path / "runs" / "grpo" / "final") == "grpo/final"
    assert model_label(tmp_path / "my-model") == "my-model"


def test_old_batch_folders_are_swept(tmp_path):
    old, new = tmp_path / "batch-old", tmp_path / "batch-new"
    for folder in (old, new):
        folder.mkdir()
        (folder / "predictions.jsonl").write_text("{}\n")
    os.utime(old, (0, 0))
    assert sweep(tmp_path, "batch-*", 60) == 1 and not old.exists() and new.exists()


def test_serve_refuses_the_network_without_a_login_before_loading_anything(tmp_path, capsys):
    from r1omni.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--model", str(tmp_path / "no-model")]) == 2
    assert "--host 0.0.0.0 opens the page beyond this machine" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--auth", str(tmp_path / "missing")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert main(["serve", "--data-root", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
