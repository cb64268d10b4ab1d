"""Reading the label files datasets ship: CSV tables and whitespace-separated lists."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from r1omni.errors import ManifestError


def csv_rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with a header holding the `required` columns."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        absent = [c for c in required if c not in header]
        if absent:
            raise ManifestError(f"{path}: missing columns {absent}; the header has {header}")
        reader.fieldnames = header
        for row in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}
