"""On-disk cache of frozen-tower outputs: a frozen tower runs once per clip, not once per step.

An entry is keyed by the media's content (file bytes or array bytes), the tower's identity
(architecture and weights fingerprint) and the preprocessing settings, and stored as one
safetensors file. Writes go to a unique temporary file renamed into place, so several
processes can fill one cache; an unreadable entry is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``$R1OMNI_CACHE``, else ``$XDG_CACHE_HOME/r1omni/features`` (``~/.cache/…``)."""
    if os.environ.get("R1OMNI_CACHE"):
        return Path(os.environ["R1OMNI_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "r1omni" / "features"


def content_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def array_hash(array: np.ndarray) -> str:
    digest = hashlib.sha256(str((array.shape, array.dtype.str)).encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class FeatureCache:
    """`get_or_compute(media_key, tower_key, settings, compute)` returns the cached tensor or
    computes, stores and returns it. `hits` and `misses` count lookups."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def path(self, media_key: str, tower_key: str, settings: str) -> Path:
        key = hashlib.sha256(f"{media_key}|{tower_key}|{settings}".encode()).hexdigest()
        return self.directory / key[:2] / f"{key}.safetensors"

    def contains(self, media_key: str, tower_key: str, settings: str) -> bool:
        return self.path(media_key, tower_key, settings).exists()

    def get_or_compute(
        self, media_key: str, tower_key: str, settings: str, compute: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        path = self.path(media_key, tower_key, settings)
        if path.exists():
            try:
                features = load_file(path)["features"]
                self.hits += 1
                return features
            except (SafetensorError, OSError, KeyError, ValueError):
                pass  # corrupt or partial entry: recompute and replace it
        self.misses += 1
        features = compute().detach().cpu().contiguous()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        save_file({"features": features}, temporary)
        os.replace(temporary, path)
        return features


def fill_cache(policy, rows, cache: FeatureCache, progress=None) -> list[tuple[str, str]]:
    """Compute the frozen encoders' features of every row into `cache` (an `OmniPolicy`'s, which
    keeps using it); returns (id, error) for the rows that failed, which do not stop the others.
    `progress(done, total)` after each."""
    from r1omni.errors import R1OmniError

    frozen = list(policy.frozen_encoders())
    policy.feature_cache = cache
    failures = []
    for done, row in enumerate(rows, 1):
        try:
            with torch.no_grad():
                policy.encode(policy.read_clip(row.video, row.audio, modalities=frozen))
        except R1OmniError as err:
            failures.append((row.id, str(err)))
        if progress is not None:
            progress(done, len(rows))
    return failures
