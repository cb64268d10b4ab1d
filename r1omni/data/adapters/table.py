"""A generic CSV with one clip a row: a path column (relative to the root) and a label column,
optionally speaker, split and fold columns."""

from __future__ import annotations

from pathlib import Path

from r1omni.data.label_files import csv_rows
from r1omni.data.scan import Reference, ScanResult, require_root, resolve_references
from r1omni.errors import ManifestError
from r1omni.labels import ALL_LABELS


def scan(
    root: Path,
    csv: str | Path | None = None,
    path_column: str = "path",
    label_column: str = "label",
    name: str | None = None,
) -> ScanResult:
    root = require_root(root)
    table = Path(csv) if csv else root / "labels.csv"
    if not table.is_file():
        raise ManifestError(f"{table}: label CSV not found (pass --csv)")
    references = []
    for line, row in csv_rows(table, (path_column, label_column)):
        fold = row.get("fold") or None
        if fold is not None and not fold.isdigit():
            raise ManifestError(f"{table}:{line}: fold must be a whole number, got {fold!r}")
        references.append(Reference(
            row[path_column], row[label_column], f"{table}:{line}",
            fold=int(fold) if fold else None, split=row.get("split") or None,
            speaker=row.get("speaker") or None,
        ))

    def locate(relative: str) -> Path | None:
        path = root / relative
        return path if path.is_file() else None

    return resolve_references(references, locate, name or table.stem, ALL_LABELS)
