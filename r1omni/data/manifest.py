"""Manifest rows: the one interface between dataset adapters and everything downstream.

A manifest is JSONL, one clip a row. ``video`` and ``audio`` may name the same file (a video
and its soundtrack). Relative paths are resolved against the manifest's folder when read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from r1omni.atomic import replacing
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
# JSON types each field accepts; ids and speakers may be numbers in the source data (kept as text).
_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str, int), "speaker": (str, int), "fold": (int,), "cues": (dict,), "meta": (dict,),
    **{name: (str,) for name in ("label", "dataset", "video", "audio", "split", "rationale", "caption", "domain")}}
_JSON_NAMES = {str: "a string", int: "an integer", dict: "an object"}


def row_from_json(data: dict, where: str = "") -> ClipRow:
    """Validate one decoded JSON row; errors name `where` (file:line)."""
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict):
        raise ManifestError(f"{prefix}a row must be a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ManifestError(f"{prefix}unknown fields {unknown}; allowed: {sorted(_FIELDS)}")
    check_field_types(data, _TYPES, prefix)
    for key in ("id", "label", "dataset"):
        if data.get(key) is None or data.get(key) == "":
            raise ManifestError(f"{prefix}missing required field {key!r}")
    if not (data.get("video") or data.get("audio")):
        raise ManifestError(f"{prefix}row {data['id']!r} has neither 'video' nor 'audio'")
    try:
        label = canonical(data["label"])
    except LabelError as err:
        raise ManifestError(f"{prefix}{err}") from None
    text = {key: str(data[key]) for key in ("id", "speaker") if data.get(key) is not None}
    return ClipRow(**{**data, **text, "label": label})


def check_field_types(data: dict, types: dict[str, tuple[type, ...]], prefix: str = "") -> None:
    """`ManifestError` for a field of `data` named in `types` whose value (when not null) is not
    one of its JSON types; true/false is not a number here."""
    for key, allowed in types.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, allowed) or isinstance(value, bool)):
            wanted = " or ".join(_JSON_NAMES[t] for t in allowed)
            raise ManifestError(f"{prefix}field {key!r} must be {wanted}, got {json.dumps(value)[:60]}")


def write_manifest(rows: Iterable[ClipRow], path: str | Path) -> Path:
    """`rows` as JSONL at `path`, written whole or not at all (a crash leaves any old file)."""
    path = Path(path)
    with replacing(path) as temporary, temporary.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
    return path


def iter_jsonl(path: str | Path, kind: str = "manifest", max_bytes: int | None = None
               ) -> Iterator[tuple[str, object]]:
    """(``file:line``, decoded value) for each non-blank line; `ManifestError` for a missing
    file, a file without rows, a line that is not UTF-8 JSON, or (with `max_bytes`) a file
    longer than that, found having read at most `max_bytes` + 1 bytes. A leading byte-order mark
    (as some editors on Windows write) is ignored."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: {kind} not found")
    found = False
    with path.open("rb") as handle:
        for number, raw in enumerate(_lines(handle, path, kind, max_bytes), 1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise ManifestError(f"{where}: not UTF-8 text (byte {err.start + 1} of the line)") from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{where}: not valid JSON ({err.msg})") from None
            except RecursionError:
                raise ManifestError(f"{where}: JSON nested too deeply") from None
            found = True
            yield where, value
    if not found:
        raise ManifestError(f"{path}: {kind} has no rows (the file is empty or blank)")


def read_manifest(path: str | Path, max_bytes: int | None = None, max_rows: int | None = None) -> list[ClipRow]:
    """All rows of a manifest, media paths made absolute; `ManifestError` names a bad line.
    `max_bytes` and `max_rows` are checked as the file streams, so an oversized manifest is
    refused having read no more than the cap (the web page reads visitors' manifests so)."""
    path = Path(path)
    rows, seen = [], set()
    for where, data in iter_jsonl(path, max_bytes=max_bytes):
        if max_rows is not None and len(rows) == max_rows:
            raise ManifestError(f"{path}: more than {max_rows} rows, over the cap")
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


def _lines(handle, path: Path, kind: str, max_bytes: int | None) -> Iterator[bytes]:
    """The file's lines, refused once they pass `max_bytes` (a line is never read past it)."""
    left = max_bytes
    while True:
        raw = handle.readline(-1 if left is None else left + 1)
        if not raw:
            return
        if left is not None:
            left -= len(raw)
            if left < 0:
                raise ManifestError(f"{path}: {kind} longer than {max_bytes} bytes, over the cap")
        yield raw
