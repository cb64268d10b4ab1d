"""What a dataset adapter returns, and the file-finding helpers adapters share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from r1omni.data.manifest import ClipRow
from r1omni.errors import ManifestError
from r1omni.labels import lookup
from r1omni.media import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS


@dataclass
class ScanResult:
    """Rows found, files left out (with why) and files the labels name but the disk lacks."""

    rows: list[ClipRow] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (referenced name, where)

    def skip(self, path, reason: str) -> None:
        self.skipped.append((str(path), reason))

    def count(self, key: str) -> Counter:
        return Counter(getattr(row, key) for row in self.rows)


def media_files(root: Path, extensions=MEDIA_EXTENSIONS) -> list[Path]:
    """Every media file under `root` (of `extensions`), sorted, hidden folders left out."""
    return sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in extensions and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def image_files(root: Path) -> list[Path]:
    """Every still image under `root`, sorted (read as one-frame videos)."""
    return media_files(require_root(root), IMAGE_EXTENSIONS)


def coded_files(root: Path, parse_name: Callable[[str], dict | str], result: ScanResult) -> Iterator[tuple[Path, dict]]:
    """(file, codes) for the media files under `root` whose names `parse_name` decodes; it
    returns a reason instead for the others, which are recorded in `result` as skipped."""
    for path in media_files(require_root(root)):
        codes = parse_name(path.stem)
        if isinstance(codes, str):
            result.skip(path, codes)
        else:
            yield path, codes


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def media_fields(path: Path) -> dict[str, str]:
    """Row fields for one file: a video also stands for its soundtrack."""
    return {"video": str(path), "audio": str(path)} if is_video(path) else {"audio": str(path)}


def index_by_stem(root: Path) -> dict[str, Path]:
    """Media files under `root` by file stem, videos preferred when a stem has both."""
    index: dict[str, Path] = {}
    for path in media_files(root):
        if path.stem not in index or (is_video(path) and not is_video(index[path.stem])):
            index[path.stem] = path
    return index


def require_root(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: dataset root is not a folder")
    return root


@dataclass
class Reference:
    """One clip as a label file names it, before it is found on disk."""

    name: str  # file name, stem or relative path, as the label file writes it
    label: str  # raw label text or code
    where: str  # file:line, for reports
    fold: int | None = None  # the fold whose test set lists it
    split: str | None = None
    speaker: str | None = None


def resolve_references(
    references: list[Reference],
    locate: Callable[[str], Path | None],
    dataset: str,
    vocab: tuple[str, ...],
    codes: dict[str, str] | None = None,
) -> ScanResult:
    """Rows for the references whose file `locate` finds, one per file.

    A file listed several times (in the train set of one fold and the test set of another)
    keeps one row; its fold is the test fold. Unknown labels and conflicting labels are skipped
    with the reason, files not on disk are reported missing.
    """
    result = ScanResult()
    merged: dict[Path, tuple[str, Reference, int | None, str | None]] = {}
    rejected: set[Path] = set()
    for ref in references:
        path = locate(ref.name)
        if path is None:
            result.missing.append((ref.name, ref.where))
            continue
        raw = ref.label.strip()
        label = (codes or {}).get(raw) or lookup(raw)
        if label is None or label not in vocab:
            result.skip(path, f"unknown label {raw!r} at {ref.where}; expected one of: {', '.join(vocab)}")
            rejected.add(path)
            continue
        if path not in merged:
            merged[path] = (label, ref, ref.fold, ref.split)
            continue
        first_label, first, fold, split = merged[path]
        if first_label != label:
            result.skip(path, f"conflicting labels {first_label!r} ({first.where}) and {label!r} ({ref.where})")
            rejected.add(path)
        merged[path] = (first_label, first, fold or ref.fold, split or ref.split)
    for path, (label, ref, fold, split) in merged.items():
        if path in rejected:
            continue
        result.rows.append(ClipRow(
            id=path.stem, label=label, dataset=dataset, speaker=ref.speaker, fold=fold,
            split=None if fold else split, **media_fields(path),
        ))
    return result
