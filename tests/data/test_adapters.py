"""Each adapter on a small fake tree that follows the dataset's real naming scheme."""

from pathlib import Path

import pytest

from r1omni.cli import main
from r1omni.data import read_manifest, scan_dataset, write_manifest
from r1omni.errors import ManifestError

from corpora import shared_data


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0")  # adapters never decode, so any bytes will do


def by_id(result):
    return {row.id: row for row in result.rows}


def reasons(result):
    return {Path(path).name: why for path, why in result.skipped}


def test_ravdess(tmp_path):
    touch(tmp_path,
          "Actor_01/01-01-03-01-01-01-01.mp4",  # audio-video speech, happy
          "Actor_05/02-02-06-02-02-01-05.mp4",  # video-only song, fearful
          "Actor_24/03-01-02-01-01-02-24.wav",  # audio-only, calm
          "Actor_01/01-01-09-01-01-01-01.mp4",  # emotion 09 does not exist
          "Actor_01/01-01-03-01-01-01.mp4",  # six fields
          "Actor_25/03-01-01-01-01-01-25.wav",  # actor 25 does not exist
          "Actor_01/README.txt")
    result = scan_dataset("ravdess", tmp_path)
    rows = by_id(result)
    assert set(rows) == {"01-01-03-01-01-01-01", "02-02-06-02-02-01-05", "03-01-02-01-01-02-24"}
    av = rows["01-01-03-01-01-01-01"]
    assert (av.label, av.speaker, av.fold, av.dataset) == ("happy", "01", 1, "ravdess")
    assert av.video == av.audio and av.meta["vocal_channel"] == "speech" and av.meta["gender"] == "male"
    video_only = rows["02-02-06-02-02-01-05"]
    assert (video_only.label, video_only.fold, video_only.audio) == ("fear", 2, None)
    assert video_only.meta == {"modality": "video-only", "vocal_channel": "song", "intensity": "strong",
                               "statement": "02", "repetition": "01", "gender": "male"}
    audio_only = rows["03-01-02-01-01-02-24"]
    assert (audio_only.label, audio_only.fold, audio_only.video) == ("calm", 6, None)
    why = reasons(result)
    assert why["01-01-09-01-01-01-01.mp4"] == "unknown emotion code '09'"
    assert "MM-VC-EE-II-SS-RR-AA" in why["01-01-03-01-01-01.mp4"]
    assert "actor '25'" in why["03-01-01-01-01-01-25.wav"]
    assert "README.txt" not in why  # not media: not a clip


def test_cremad_pairs_files_and_skips_broken_clips(tmp_path):
    touch(tmp_path,
          "VideoFlash/1001_DFA_ANG_XX.flv", "AudioWAV/1001_DFA_ANG_XX.wav", "AudioMP3/1001_DFA_ANG_XX.mp3",
          "AudioMP3/1091_IEO_HAP_HI.mp3",
          "AudioWAV/1076_MTI_NEU_XX.wav",  # known broken
          "AudioWAV/1002_DFA_XYZ_XX.wav", "AudioWAV/0999_DFA_SAD_XX.wav", "AudioWAV/1002_ABC_SAD_XX.wav")
    with pytest.warns(UserWarning, match="1076_MTI_NEU_XX"):
        result = scan_dataset("crema-d", tmp_path)
    rows = by_id(result)
    assert set(rows) == {"1001_DFA_ANG_XX", "1091_IEO_HAP_HI"}
    angry = rows["1001_DFA_ANG_XX"]
    assert angry.video.endswith(".flv") and angry.audio.endswith(".wav")  # lossless audio preferred
    assert (angry.label, angry.speaker, angry.fold, angry.meta["level"]) == ("angry", "1001", 1, "unspecified")
    happy = rows["1091_IEO_HAP_HI"]
    assert (happy.fold, happy.video, happy.audio.endswith(".mp3")) == (5, None, True)
    why = reasons(result)
    assert why["1076_MTI_NEU_XX.wav"].startswith("known broken")
    assert why["1002_DFA_XYZ_XX.wav"] == "unknown emotion code 'XYZ'"
    assert "actor '0999'" in why["0999_DFA_SAD_XX.wav"]
    assert why["1002_ABC_SAD_XX.wav"] == "unknown sentence code 'ABC'"


def test_cremad_folds_are_speaker_independent_and_cover_all_actors():
    from r1omni.data.adapters.cremad import FOLD_OF_ACTOR

    assert len(FOLD_OF_ACTOR) == 91 and set(FOLD_OF_ACTOR.values()) == {1, 2, 3, 4, 5}
    sizes = [list(FOLD_OF_ACTOR.values()).count(k) for k in range(1, 6)]
    assert max(sizes) - min(sizes) <= 1


def test_emodb_fake_tree(tmp_path):
    touch(tmp_path, "wav/03a01Fa.wav", "wav/16b10Tb.wav", "wav/03a01Xa.wav", "wav/99a01Fa.wav")
    result = scan_dataset("emodb", tmp_path)
    rows = by_id(result)
    assert (rows["03a01Fa"].label, rows["03a01Fa"].speaker, rows["03a01Fa"].fold) == ("happy", "03", 1)
    assert (rows["16b10Tb"].label, rows["16b10Tb"].meta["gender"], rows["16b10Tb"].fold) == ("sad", "female", 10)
    assert "emotion letter 'X'" in reasons(result)["03a01Xa.wav"]
    assert "speaker '99'" in reasons(result)["99a01Fa.wav"]


def test_emodb_real_corpus_counts():
    """The real Emo-DB corpus: 535 clips, 10 speakers, the per-emotion counts its README gives."""
    result = scan_dataset("emodb", shared_data("emodb"))
    assert len(result.rows) == 535 and not result.skipped
    assert result.count("label") == {"angry": 127, "boredom": 81, "neutral": 79, "happy": 71,
                                     "fear": 69, "sad": 62, "disgust": 46}
    assert len(result.count("speaker")) == 10


def test_ravdess_speech_half_real_corpus_counts():
    """RAVDESS speech, actors 13-24 as ../shared/data holds it (16 kHz FLAC): 720 clips, 12 actors,
    60 each, 96 a class but neutral's 48 (one intensity), folds 4-6; each clip's sound reads."""
    from r1omni.media import read_audio

    result = scan_dataset("ravdess", shared_data("ravdess_speech_actors13-24"))
    assert len(result.rows) == 720 and not result.skipped
    assert set(result.count("speaker").values()) == {60} and len(result.count("speaker")) == 12
    assert result.count("label") == {"neutral": 48, "calm": 96, "happy": 96, "sad": 96, "angry": 96, "fear": 96,
                                     "disgust": 96, "surprise": 96}
    assert {r.fold for r in result.rows} == {4, 5, 6}
    assert 2.5 < len(read_audio(result.rows[0].audio)) / 16_000 < 6


def test_fer2013_fake_tree(tmp_path):
    touch(tmp_path, "train/happy/Training_1.jpg", "validation/sad/PublicTest_2.jpg", "test/neutral/PrivateTest_3.jpg",
          "test/contempt/PrivateTest_4.jpg", "extra/happy/x.jpg", "test/happy/notes.txt")
    result = scan_dataset("fer2013", tmp_path)
    rows = by_id(result)
    assert {(r.label, r.split, r.audio) for r in rows.values()} == {("happy", "train", None), ("sad", "val", None),
                                                                    ("neutral", "test", None)}
    assert rows["train/happy/Training_1"].video.endswith("Training_1.jpg")
    assert "not one of FER-2013's" in reasons(result)["PrivateTest_4.jpg"]
    assert "not in {train" in reasons(result)["x.jpg"]


def test_ckplus_fake_tree_folds_by_subject(tmp_path):
    names = [f"{c}/S{s:03d}_001_0000001{f}.png" for s in range(1, 13) for c, f in (("anger", 1), ("sadness", 2))]
    touch(tmp_path, *names, "happy/S005.png", "neutral/S001_002_00000001.png")
    result = scan_dataset("ckplus", tmp_path)
    assert len(result.rows) == 24 and result.count("label") == {"angry": 12, "sad": 12}
    folds = {}
    for row in result.rows:
        folds.setdefault(row.speaker, set()).add(row.fold)
    assert all(len(f) == 1 for f in folds.values()) and len({f for s in folds.values() for f in s}) == 10
    assert "SXXX_YYY_ZZZZZZZZ" in reasons(result)["S005.png"]
    assert "not in a class folder" in reasons(result)["S001_002_00000001.png"]


def test_prepare_with_a_relative_root_writes_paths_the_manifest_can_find(tmp_path, monkeypatch):
    touch(tmp_path, "corpus/wav/03a01Fa.wav")
    monkeypatch.chdir(tmp_path)
    assert main(["data", "prepare", "--dataset", "emodb", "--root", "corpus", "--out", "runs/x/all.jsonl"]) == 0
    (row,) = read_manifest(tmp_path / "runs/x/all.jsonl")
    assert Path(row.audio) == tmp_path / "corpus/wav/03a01Fa.wav"


def test_face_corpora_real_counts():
    """The real FER-2013 and CK+48 copies: the counts their READMEs give."""
    fer = scan_dataset("fer2013", shared_data("fer2013"))
    assert fer.count("split") == {"train": 9436, "val": 3589, "test": 3589} and not fer.skipped
    assert sum(r.label == "disgust" and r.split == "test" for r in fer.rows) == 55
    ck = scan_dataset("ckplus", shared_data("ckplus48"))
    assert len(ck.rows) == 981 and len(ck.count("speaker")) == 118 and ck.count("label")["contempt"] == 54


def test_dfew_folds_from_test_sets(tmp_path):
    touch(tmp_path, "Clip/original/00001.mp4", "Clip/original/00002.mp4", "Clip/original/00003.mp4",
          "Clip/original/00004.mp4", "Clip/original/00005.mp4")
    split = tmp_path / "EmoLabel_DataSplit"
    split.mkdir()
    (split / "single_trainset_1.csv").write_text("video_name,label\n2,2\n3,4\n4,9\n5,1\n")
    (split / "single_testset_1.csv").write_text("video_name,label\n1,1\n99,3\n")
    (split / "single_testset_2.csv").write_text("video_name,label\n2,2\n5,7\n")
    result = scan_dataset("dfew", tmp_path)
    rows = by_id(result)
    assert {k: (r.label, r.fold, r.split) for k, r in rows.items()} == {
        "00001": ("happy", 1, None), "00002": ("sad", 2, None), "00003": ("angry", None, "train"),
    }
    assert result.missing == [("99", f"{split / 'single_testset_1.csv'}:3")]
    why = reasons(result)
    assert "unknown label '9'" in why["00004.mp4"]
    assert why["00005.mp4"].startswith("conflicting labels") and "'happy'" in why["00005.mp4"]
    assert "'fear'" in why["00005.mp4"]
    assert "00005" not in rows


def test_dfew_without_split_files_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match="no DFEW split files"):
        scan_dataset("dfew", tmp_path)


def test_mafw_split_lists(tmp_path):
    touch(tmp_path, "data/clips/00001.mp4", "data/clips/00002.mp4", "data/clips/00003.mp4")
    sets = tmp_path / "Train & Test Set" / "single" / "no_caption"
    (sets / "set_1").mkdir(parents=True)
    (sets / "set_2").mkdir(parents=True)
    (sets / "set_1" / "train.txt").write_text("00002.mp4 contempt\n00003.mp4 helplessness\n")
    (sets / "set_1" / "test.txt").write_text("00001.mp4 anxiety\n00007.mp4 happiness\nbroken_line\n")
    (sets / "set_2" / "test.txt").write_text("00002.mp4 contempt\n")
    result = scan_dataset("mafw", tmp_path)
    assert {k: (r.label, r.fold) for k, r in by_id(result).items()} == {
        "00001": ("anxiety", 1), "00002": ("contempt", 2), "00003": ("helplessness", None),
    }
    assert [name for name, _ in result.missing] == ["00007.mp4"]
    assert any(why == "line has no label" for _, why in result.skipped)


def test_mer2023_label_csv(tmp_path):
    touch(tmp_path, "train/sample_00000001.avi", "train/sample_00000002.avi")
    (tmp_path / "train-label.csv").write_text("name,discrete,valence\nsample_00000001,worried,-1.2\n"
                                              "sample_00000002,contempt,0\nsample_00000003,sad,-2\n")
    result = scan_dataset("mer2023", tmp_path)
    rows = by_id(result)
    assert (rows["sample_00000001"].label, rows["sample_00000001"].split) == ("worried", "train")
    assert "unknown label 'contempt'" in reasons(result)["sample_00000002.avi"]
    assert [name for name, _ in result.missing] == ["sample_00000003"]


def test_folder_per_class(tmp_path):
    touch(tmp_path, "happy/a.mp4", "Fearful/sub/b.wav", "excited/c.wav", "loose.wav")
    result = scan_dataset("folder", tmp_path, name="mine")
    rows = by_id(result)
    assert {k: (r.label, r.dataset) for k, r in rows.items()} == {"happy/a": ("happy", "mine"),
                                                                 "Fearful/sub/b": ("fear", "mine")}
    assert rows["happy/a"].video == rows["happy/a"].audio and rows["Fearful/sub/b"].video is None
    why = reasons(result)
    assert "folder 'excited' is not a known emotion" in why["c.wav"]
    assert why["loose.wav"] == "not inside a class folder"


def test_generic_csv(tmp_path):
    touch(tmp_path, "clips/x.mp4", "clips/y.wav")
    (tmp_path / "meta.csv").write_text("file,emotion,speaker,fold\nclips/x.mp4,Happiness,s1,1\n"
                                       "clips/y.wav,sad,s2,2\nclips/z.wav,sad,s2,2\n")
    result = scan_dataset("csv", tmp_path, csv=tmp_path / "meta.csv", path_column="file",
                          label_column="emotion")
    rows = by_id(result)
    assert {k: (r.label, r.speaker, r.fold, r.dataset) for k, r in rows.items()} == {
        "x": ("happy", "s1", 1, "meta"), "y": ("sad", "s2", 2, "meta")}
    assert [name for name, _ in result.missing] == ["clips/z.wav"]
    with pytest.raises(ManifestError, match=r"missing columns \['path', 'label'\]"):
        scan_dataset("csv", tmp_path, csv=tmp_path / "meta.csv")
    with pytest.raises(ManifestError, match="label CSV not found"):
        scan_dataset("csv", tmp_path)


def test_unknown_adapter_option_and_root(tmp_path):
    with pytest.raises(ManifestError, match="unknown dataset 'imagenet'"):
        scan_dataset("imagenet", tmp_path)
    with pytest.raises(ManifestError, match=r"\['csv'\] do not apply to the ravdess adapter"):
        scan_dataset("ravdess", tmp_path, csv="x.csv")
    with pytest.raises(ManifestError, match="not a folder"):
        scan_dataset("ravdess", tmp_path / "absent")


def test_data_prepare_cli_writes_manifest_summary_and_problem_list(tmp_path, capsys):
    touch(tmp_path / "ravdess", "Actor_01/01-01-03-01-01-01-01.mp4", "Actor_02/03-01-05-02-01-01-02.wav",
          "Actor_02/03-01-11-02-01-01-02.wav")
    out = tmp_path / "manifests" / "ravdess.jsonl"
    code = main(["data", "prepare", "--dataset", "ravdess", "--root", str(tmp_path / "ravdess"), "--out", str(out)])
    assert code == 0
    rows = read_manifest(out)
    assert [(r.id, r.label) for r in rows] == [("01-01-03-01-01-01-01", "happy"), ("03-01-05-02-01-01-02", "angry")]
    printed = capsys.readouterr().out
    assert "2 clips written" in printed and "clips per label" in printed and "clips per fold" in printed
    assert "files skipped: 1" in printed and "unknown emotion code '11'" in printed
    problems = out.with_suffix(".problems.tsv").read_text()
    assert "03-01-11-02-01-01-02.wav\tunknown emotion code '11'" in problems
    assert main(["data", "prepare", "--dataset", "nope", "--root", str(tmp_path), "--out", str(out)]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


def test_manifest_rows_point_at_decodable_media(tmp_path, make_clip, make_audio):
    """Real tiny RAVDESS-named files: the manifest's paths feed the media readers unchanged."""
    from r1omni.media import read_audio, read_frames

    actor = tmp_path / "Actor_03"
    actor.mkdir()
    make_clip("clip.mp4", seconds=1.0).rename(actor / "01-01-04-01-01-01-03.mp4")
    make_audio("tone.wav", seconds=1.0).rename(actor / "03-01-04-01-01-01-03.wav")
    out = write_manifest(scan_dataset("ravdess", tmp_path).rows, tmp_path / "m.jsonl")
    rows = {row.id: row for row in read_manifest(out)}
    av_row, audio_row = rows["01-01-04-01-01-01-03"], rows["03-01-04-01-01-01-03"]
    assert av_row.label == audio_row.label == "sad"
    assert read_frames(av_row.video, num_frames=4, size=32).shape == (4, 32, 32, 3)
    assert read_audio(av_row.audio).size > 15_000 and read_audio(audio_row.audio).size == 16_000
