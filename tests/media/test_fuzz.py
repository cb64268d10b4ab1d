"""A bounded fuzz run in the suite: a few hundred files damaged at test time (synthetic clips,
images, audio of every container, Emo-DB recordings, crafted headers); every decoder call returns
or raises `MediaError` within time and memory limits. `python tests/fuzz_media.py` runs more."""

from fuzz_media import make_files, run, table, verdict

from corpora import shared_data


def test_damaged_files_return_or_raise_media_error_in_bounded_time_and_memory(tmp_path):
    recordings = sorted((shared_data("emodb") / "wav").glob("*.wav"))[:10]
    files = make_files(tmp_path, 300, seed=1, recordings=recordings)
    results = run(files, timeout=20.0, memory_mb=3072, say=lambda _: None)
    failures = [r for r in results if verdict(r) not in ("ok", "MediaError")]
    assert not failures, table(results) + "\n" + "\n".join(f"{r['file']}: {r['outcomes']}" for r in failures[:10])
    assert max(r["peak_mb"] for r in results) < 512  # the worker alone needs about 100 MB
    assert sum(verdict(r) == "MediaError" for r in results) > 30  # the damage was real
