"""DFEW: the 5-fold split CSVs ``single_trainset_k.csv`` / ``single_testset_k.csv``
(``video_name,label``, labels 1–7 in the official order) and the clips they name.

Each clip's fold is the fold whose test set lists it: train on fold k = rows with fold != k.
"""

from __future__ import annotations

import re
from pathlib import Path

from r1omni.data.label_files import csv_rows
from r1omni.data.scan import Reference, ScanResult, index_by_stem, require_root, resolve_references
from r1omni.errors import ManifestError
from r1omni.labels import VOCABULARIES

VOCAB = VOCABULARIES["dfew"]
CODES = {str(i): label for i, label in enumerate(VOCAB, 1)}
_SPLIT_FILE = re.compile(r"^single_(train|test)set_(\d+)\.csv$")


def clip_key(name: str) -> str:
    """DFEW writes clip 11 as ``11``; the file is ``00011.mp4``."""
    stem = Path(name).stem
    return f"{int(stem):05d}" if stem.isdigit() else stem


def scan(root: Path) -> ScanResult:
    root = require_root(root)
    references = []
    split_files = sorted(p for p in root.rglob("*.csv") if _SPLIT_FILE.match(p.name))
    if not split_files:
        raise ManifestError(f"{root}: no DFEW split files (single_trainset_k.csv / single_testset_k.csv)")
    for path in split_files:
        role, fold = _SPLIT_FILE.match(path.name).groups()
        for line, row in csv_rows(path, ("video_name", "label")):
            references.append(Reference(
                row["video_name"], row["label"], f"{path}:{line}",
                fold=int(fold) if role == "test" else None, split="train" if role == "train" else None,
            ))
    index = index_by_stem(root)
    return resolve_references(references, lambda n: index.get(clip_key(n)), "dfew", VOCAB, CODES)
