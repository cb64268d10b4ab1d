"""The serve load test at CI's size: a few clients for seconds, every check of the full run
(scripts/serve_load_test.py; the 16-client, 5-minute figures are in docs/input.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).parents[2] / "scripts" / "serve_load_test.py"


def test_the_server_answers_everyone_leaks_nothing_and_cleans_up(tmp_path):
    out = tmp_path / "load.json"
    # 4 clients for 20 s: each kind of request (the probes of the server's files among them) is sent.
    done = subprocess.run([sys.executable, str(SCRIPT), "--clients", "4", "--seconds", "20", "--timeout", "8",
                           "--keep-uploads-min", "0.5", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert all(report["checks"].values()) and report["requests"] >= 7
    assert report["disk_mb_peak"] > report["disk_mb_before"]  # uploads were kept a while, then deleted
    kinds = report["by_kind"]
    assert len(kinds) == 7, sorted(kinds)  # every kind of request was sent, the probes of the server's files too
    assert kinds["clip"]["result"] >= 1 and kinds["over-limit upload"]["message"] == kinds["over-limit upload"]["n"]
    assert all(row["result"] == 0 for kind, row in kinds.items() if kind != "clip" and "batch" not in kind
               and "uploaded manifest" not in kind)  # probes and broken input get messages, never results
