"""A folder per class: ``ROOT/<label>/…/clip.mp4``; any known label spelling names a folder."""

from __future__ import annotations

from pathlib import Path

from r1omni.data.manifest import ClipRow
from r1omni.data.scan import ScanResult, media_fields, media_files, require_root
from r1omni.labels import ALL_LABELS, lookup


def scan(root: Path, name: str | None = None) -> ScanResult:
    root = require_root(root)
    dataset = name or root.name
    result = ScanResult()
    for path in media_files(root):
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            result.skip(path, "not inside a class folder")
            continue
        label = lookup(relative.parts[0])
        if label is None:
            result.skip(path, f"folder {relative.parts[0]!r} is not a known emotion; known: {', '.join(ALL_LABELS)}")
            continue
        result.rows.append(ClipRow(
            id=relative.with_suffix("").as_posix(), label=label, dataset=dataset, **media_fields(path),
        ))
    return result
