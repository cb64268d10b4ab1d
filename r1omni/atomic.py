"""Outputs written whole or not at all.

A file or folder is written under a temporary name beside its place (``.NAME.tmp-PID.SUFFIX``),
flushed to disk (fsync) and renamed into place, so that a crash at any moment leaves the old output or
the new one, never half of one. A folder replacing another is swapped in with one atomic
exchange where the kernel offers it (Linux's renameat2), so there is no moment without a valid
folder under the name. Leftover temporaries of a killed process are removed by `clean_leftovers`.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPORARY = ".tmp-"  # in the names of temporaries: .NAME.tmp-PID.SUFFIX


def temporary_beside(path: Path) -> Path:
    """``.NAME.tmp-PID.SUFFIX``: hidden, this process's, and of the same kind as `path` (a plot's
    writer picks its format by the suffix)."""
    return path.with_name(f".{path.stem}{TEMPORARY}{os.getpid()}{path.suffix}")


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_tree(folder: Path) -> None:
    """Every file and folder under `folder`, and `folder` itself, flushed to disk."""
    for inner, _, names in os.walk(folder):
        for name in names:
            _fsync(Path(inner) / name)
        _fsync(Path(inner))


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path to write `path`'s new content to; on leaving the block without an
    error it is flushed and renamed into place, on an error removed (the old `path` stays)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(path)
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, path)
        _fsync(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """`path` replaced whole by `text` (UTF-8)."""
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    system or its file system does not offer it."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_cwd, rename_exchange = -100, 2
    return renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), rename_exchange) == 0


def publish_folder(temporary: Path, directory: Path) -> Path:
    """The fully written folder `temporary` put in place of `directory` (flushed first). An old
    `directory` is swapped out atomically and then deleted; where no atomic swap exists it is
    renamed aside first, leaving a moment with the old folder under its aside name only."""
    temporary, directory = Path(temporary), Path(directory)
    sync_tree(temporary)
    if directory.exists():
        if _exchange(temporary, directory):
            shutil.rmtree(temporary)
        else:
            aside = directory.with_name(f".{directory.name}.old{TEMPORARY}{os.getpid()}")
            os.replace(directory, aside)
            os.replace(temporary, directory)
            shutil.rmtree(aside)
    else:
        os.replace(temporary, directory)
    _fsync(directory.parent)
    return directory


@contextmanager
def writing_folder(directory: str | Path) -> Iterator[Path]:
    """A fresh temporary folder to write `directory`'s new content in, published on success
    (`publish_folder`), removed on an error."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(directory)
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        yield temporary
        publish_folder(temporary, directory)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def clean_leftovers(folder: Path) -> list[Path]:
    """Remove the temporaries killed processes left in `folder` (``.NAME.tmp-PID.SUFFIX`` and
    ``.NAME.old.tmp-PID``); returns what was removed. Call it only where no other process is
    writing into `folder`."""
    removed = []
    for entry in Path(folder).glob(f".*{TEMPORARY}*"):
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        removed.append(entry)
    return removed
