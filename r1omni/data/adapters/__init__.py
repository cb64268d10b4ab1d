"""Dataset adapters: each reads one dataset as its owners distribute it and returns manifest rows."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from r1omni.data.adapters import ckplus, cremad, dfew, emodb, fer2013, folder, mafw, mer2023, ravdess, table
from r1omni.data.scan import ScanResult
from r1omni.errors import ManifestError

ADAPTERS: dict[str, Callable[..., ScanResult]] = {
    "ravdess": ravdess.scan,
    "cremad": cremad.scan,
    "emodb": emodb.scan,
    "dfew": dfew.scan,
    "mafw": mafw.scan,
    "mer2023": mer2023.scan,
    "fer2013": fer2013.scan,
    "ckplus": ckplus.scan,
    "folder": folder.scan,
    "csv": table.scan,
}


def scan_dataset(dataset: str, root: str | Path, **options) -> ScanResult:
    """Run the adapter for `dataset` over `root`; `options` go to adapters that take them."""
    key = dataset.lower().replace("-", "").replace("_", "")
    if key not in ADAPTERS:
        raise ManifestError(f"unknown dataset {dataset!r}; adapters: {', '.join(ADAPTERS)}")
    adapter = ADAPTERS[key]
    given = {k: v for k, v in options.items() if v is not None}
    accepted = set(inspect.signature(adapter).parameters) - {"root"}
    unused = sorted(set(given) - accepted)
    if unused:
        raise ManifestError(f"option(s) {unused} do not apply to the {key} adapter")
    # Absolute: a manifest's relative paths are read against its own folder, not the current one.
    return adapter(Path(root).absolute(), **given)
