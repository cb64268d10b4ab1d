"""MER2023: label CSVs with ``name`` and ``discrete`` columns (``train-label.csv`` …) and the
clips they name; the split is the CSV's name without ``-label``."""

from __future__ import annotations

import csv
from pathlib import Path

from r1omni.data.label_files import csv_rows
from r1omni.data.scan import Reference, ScanResult, index_by_stem, require_root, resolve_references
from r1omni.errors import ManifestError
from r1omni.labels import VOCABULARIES

VOCAB = VOCABULARIES["mer2023"]
COLUMNS = ("name", "discrete")


def _label_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*.csv")):
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
        if all(c in (h.strip() for h in header) for c in COLUMNS):
            found.append(path)
    return found


def scan(root: Path) -> ScanResult:
    root = require_root(root)
    label_files = _label_files(root)
    if not label_files:
        raise ManifestError(f"{root}: no MER2023 label CSV (columns {', '.join(COLUMNS)})")
    references = []
    for path in label_files:
        split = path.stem.replace("-label", "").replace("_label", "")
        for line, row in csv_rows(path, COLUMNS):
            references.append(Reference(row["name"], row["discrete"], f"{path}:{line}", split=split))
    index = index_by_stem(root)
    return resolve_references(references, lambda n: index.get(Path(n).stem), "mer2023", VOCAB)
