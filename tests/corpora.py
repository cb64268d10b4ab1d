"""Real corpora the repository does not ship (Emo-DB: http://emodb.bilderbar.info, 535 wav files in
emodb/wav/). R1OMNI_DATA names their folder; .ci/run sets it and fails when a corpus is missing.
A module of its own (not conftest) so that tests and tests/fuzz_media.py import it by one name."""

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("R1OMNI_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_data(name: str) -> Path:
    """The folder of corpus `name` under $R1OMNI_DATA; the test skips, saying how to get it, without it."""
    folder = DATA / name
    if not folder.is_dir():
        pytest.skip(f"{name} not found at {folder}: set R1OMNI_DATA to the folder that holds {name}/ "
                    "(see README, 'Real datasets')")
    return folder
