"""Manifest rows and the dataset adapters that write them (`adapters/`), and the synthetic world (`synth/`)."""

from r1omni.data.adapters import ADAPTERS, scan_dataset
from r1omni.data.manifest import ClipRow, read_manifest, write_manifest
from r1omni.data.scan import ScanResult

__all__ = ["ADAPTERS", "ClipRow", "ScanResult", "read_manifest", "scan_dataset", "write_manifest"]
