"""Speaker-independent splits: every clip of a held-out speaker goes to the test side, so that a
model is scored on voices it never trained on (the protocol of speech-emotion papers)."""

from __future__ import annotations

from collections.abc import Iterable

from r1omni.data.manifest import ClipRow
from r1omni.errors import ManifestError


def split_by_speaker(rows: list[ClipRow], test_speakers: Iterable[str]) -> tuple[list[ClipRow], list[ClipRow]]:
    """(train, test): the rows of `test_speakers` on the test side, the rest on the train side.
    Every row must name its speaker and every named speaker must have rows."""
    held_out = {str(s) for s in test_speakers}
    if not held_out:
        raise ManifestError("name at least one speaker to hold out")
    unnamed = [r.id for r in rows if r.speaker is None]
    if unnamed:
        raise ManifestError(f"{len(unnamed)} rows name no speaker (first: {unnamed[:3]}); a speaker split needs "
                            "the 'speaker' field in every row")
    present = {r.speaker for r in rows}
    absent = sorted(held_out - present)
    if absent:
        raise ManifestError(f"speakers {absent} have no rows; the manifest's speakers: {sorted(present)}")
    if held_out >= present:
        raise ManifestError("every speaker is held out: nothing is left to train on")
    return [r for r in rows if r.speaker not in held_out], [r for r in rows if r.speaker in held_out]
