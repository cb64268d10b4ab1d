"""Manifest rows: the one interface between dataset adapters and everything downstream.

A manifest is JSONL, one clip a row. ``video`` and ``audio`` may name the same file (a video
and its soundtrack). Relative paths are resolved against the manifest's folder when read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from r1omni.errors import LabelError, ManifestError
from r1omni.labels import canonical


@dataclass
class ClipRow:
    id: str
    label: str  # canonical name
    dataset: str
    video: str | None = None
    audio: str | None = None
    speaker: str | None = None
    split: str | None = None  # train / val / test … where the dataset fixes one
    fold: int | None = None  # cross-validation fold this clip is tested in
    rationale: str | None = None  # reasoning text for cold-start SFT
    caption: str | None = None  # what is seen and heard, no emotion named (perception pre-training)
    domain: str | None = None  # e.g. the synthetic world's "id" / "ood"
    cues: dict | None = None  # structured annotations of the clip's emotional cues
    meta: dict | None = None  # dataset-specific extras (intensity, gender, …)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in ("video", "audio") if getattr(self, m))


_FIELDS = {f.name for f in fields(ClipRow)}


def row_from_json(data: dict, where: str = "") -> ClipRow:
    """Validate one decoded JSON row; errors name `where` (file:line)."""
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict):
        raise ManifestError(f"{prefix}a row must be a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ManifestError(f"{prefix}unknown fields {unknown}; allowed: {sorted(_FIELDS)}")
    for key in ("id", "label", "dataset"):
        if not data.get(key):
            raise ManifestError(f"{prefix}missing required field {key!r}")
    if not (data.get("video") or data.get("audio")):
        raise ManifestError(f"{prefix}row {data['id']!r} has neither 'video' nor 'audio'")
    try:
        label = canonical(data["label"])
    except LabelError as err:
        raise ManifestError(f"{prefix}{err}") from None
    return ClipRow(**{**data, "label": label})


def write_manifest(rows: Iterable[ClipRow], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
    return path


def iter_jsonl(path: str | Path, kind: str = "manifest") -> Iterator[tuple[str, object]]:
    """(``file:line``, decoded value) for each non-blank line; `ManifestError` for a missing
    file or a line that is not JSON."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: {kind} not found")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{where}: not valid JSON ({err.msg})") from None


def read_manifest(path: str | Path) -> list[ClipRow]:
    """All rows of a manifest, media paths made absolute; `ManifestError` names a bad line."""
    path = Path(path)
    rows, seen = [], set()
    for where, data in iter_jsonl(path):
        row = row_from_json(data, where)
        if row.id in seen:
            raise ManifestError(f"{where}: duplicate id {row.id!r}")
        seen.add(row.id)
        for key in ("video", "audio"):
            value = getattr(row, key)
            if value and not Path(value).is_absolute():
                setattr(row, key, str(path.parent / value))
        rows.append(row)
    return rows
