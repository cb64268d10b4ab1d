"""What one request may ask of the server: `r1omni serve`'s limits, their defaults in one place
(the command's options take theirs from here)."""

from __future__ import annotations

from dataclasses import dataclass

from r1omni.errors import R1OmniError


@dataclass
class ServeLimits:
    """What one request may ask of the server."""

    max_upload_mb: int = 200  # per file, refused by the upload itself
    max_seconds: float = 120.0  # clip duration read from its headers, refused before decoding
    max_batch_files: int = 200
    concurrency: int = 1  # requests computed at once (one model, one set of cores)
    queue_size: int = 16  # requests waiting beyond those; more are refused
    timeout_s: float = 300.0  # a request still computing after this is answered with an error, and stopped
    max_manifest_kb: int = 2048  # a manifest is refused once reading passes this
    keep_uploads_min: float = 10.0  # uploads and batch outputs are deleted this long after they were written

    def validate(self) -> None:
        if min(self.max_upload_mb, self.max_seconds, self.max_batch_files, self.concurrency,
               self.queue_size, self.timeout_s, self.max_manifest_kb, self.keep_uploads_min) <= 0:
            raise R1OmniError(f"serve limits must all be positive, got {self}")
