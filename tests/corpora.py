"""Real corpora the repository does not ship (Emo-DB: http://emodb.bilderbar.info, 535 wav files in
emodb/wav/) and the HumanOmni parity fixture (a tiny model built and run with the official R1-Omni
code, with LAYOUT.md and keys.tsv of the released checkpoint). R1OMNI_DATA and R1OMNI_HUMANOMNI name
their folders; .ci/run sets them and fails when one is missing.
A module of its own (not conftest) so that tests and tests/fuzz_media.py import it by one name."""

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = Path(os.environ.get("R1OMNI_DATA", SHARED / "data"))
HUMANOMNI = Path(os.environ.get("R1OMNI_HUMANOMNI", SHARED / "humanomni"))


def shared_data(name: str) -> Path:
    """The folder of corpus `name` under $R1OMNI_DATA; the test skips, saying how to get it, without it."""
    folder = DATA / name
    if not folder.is_dir():
        pytest.skip(f"{name} not found at {folder}: set R1OMNI_DATA to the folder that holds {name}/ "
                    "(see README, 'Real datasets')")
    return folder


def humanomni_reference() -> Path:
    """The HumanOmni reference folder (fixture/, LAYOUT.md, keys.tsv); the test skips without it."""
    if not (HUMANOMNI / "fixture" / "outputs.safetensors").is_file():
        pytest.skip(f"the HumanOmni parity fixture is not at {HUMANOMNI}: set R1OMNI_HUMANOMNI to the folder that "
                    "holds fixture/ and keys.tsv")
    return HUMANOMNI
