"""What a visitor's request may read from the server's disk: the files the visitor uploaded, and
files inside the operator's data folder (`r1omni serve --data-root DIR`). Nothing else.

A path outside the data folder is refused with the same words whether or not it exists, and is
never opened, so a visitor learns nothing of the server's other files. Paths are resolved
(symlinks and ``..`` followed) before the check, so neither leads out of the folder. Messages
name files inside the folder relative to it, never by the server's absolute path.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from r1omni.errors import R1OmniError

NOT_OFFERED = ("this server reads no manifest from its own disk (its operator named no data folder, "
               "r1omni serve --data-root); upload the manifest with its media files")
OUTSIDE = "not a file in this server's data folder"


class ServerFiles:
    """The operator's data folder, or none (the default: visitors' uploads only)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).resolve() if root else None
        if root and not self.root.is_dir():
            raise R1OmniError(f"--data-root {root}: not a folder")

    def inside(self, path: str | Path) -> Path | None:
        """`path` resolved, when it lies inside the data folder; relative paths are taken from it."""
        if self.root is None:
            return None
        resolved = (self.root / path).resolve()
        return resolved if resolved.is_relative_to(self.root) else None

    def manifest(self, given: str) -> Path:
        """A manifest named by a visitor, inside the data folder; the same refusal for a path
        outside it and for a file that does not exist."""
        if self.root is None:
            raise R1OmniError(NOT_OFFERED)
        found = self.inside(given)
        if found is None or not found.is_file():
            raise R1OmniError(f"{given}: {OUTSIDE}")
        return found

    def shown(self, message: str) -> str:
        """`message` with the data folder's absolute path taken out."""
        return message.replace(f"{self.root}/", "") if self.root is not None else message


def sweep(folder: Path, pattern: str, older_than_s: float) -> int:
    """Delete the entries of `folder` matching `pattern` last changed more than `older_than_s` ago."""
    removed, now = 0, time.time()
    for entry in folder.glob(pattern):
        try:
            if now - entry.stat().st_mtime > older_than_s:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                removed += 1
        except FileNotFoundError:  # removed meanwhile
            continue
    return removed


REQUEST_FOLDERS = ("batch-*", "clip-*")  # a request's own outputs under the server's work folder


class Sweeper:
    """A daemon thread deleting requests' output folders `keep_s` after they were written."""

    def __init__(self, folder: Path, keep_s: float, patterns: tuple[str, ...] = REQUEST_FOLDERS):
        self.folder, self.keep_s, self.patterns = folder, keep_s, patterns
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="r1omni-sweeper", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        period = max(1.0, min(60.0, self.keep_s / 4))
        while not self.stopped.wait(period):
            for pattern in self.patterns:
                sweep(self.folder, pattern, self.keep_s)
