"""The package declares ranges, not pins: installing r1omni keeps a torch the user already has
(a CUDA build of another tested release, say) and replaces one outside the range; the exact
releases CI uses are in constraints.txt, which matches what is installed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from script_helpers import load_script

ROOT = Path(__file__).resolve().parents[1]


def planned_installs(tmp_path: Path, torch_version: str) -> tuple[int, list[str]]:
    """What `pip install .` would install beside an installed torch `torch_version` (a
    distribution record put first on the path, everything else as installed here)."""
    fake = tmp_path / "site"
    record = fake / f"torch-{torch_version}.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {torch_version}\n")
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
                           "--quiet", "--report", str(report), str(ROOT)],
                          env={**os.environ, "PYTHONPATH": str(fake)},
                          capture_output=True, text=True, timeout=300)
    if done.returncode:
        return done.returncode, []
    return 0, [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]


@pytest.mark.slow
def test_an_installed_torch_in_range_is_kept(tmp_path):
    status, names = planned_installs(tmp_path, "2.11.0")
    assert status == 0 and names == ["r1omni"], names


@pytest.mark.slow
def test_a_torch_outside_the_range_is_not_kept(tmp_path):
    status, names = planned_installs(tmp_path, "2.10.0")
    assert status != 0 or "torch" in names, names  # replaced, or refused where no other torch can be had


def test_constraints_name_the_installed_releases():
    lock = load_script("lock")
    assert (ROOT / "constraints.txt").read_text() == lock.render(lock.closure("r1omni", {"dev"})), \
        "constraints.txt differs from the installed releases: python scripts/lock.py --check says how"
