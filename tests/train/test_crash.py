"""The crash test at CI's size: training, predict and eval each killed (SIGKILL) at a random moment
and resumed, ending as an uninterrupted run does (scripts/crash_test.py; the 20-kill figures are
in docs/input.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).parents[2] / "scripts" / "crash_test.py"


def test_killed_runs_resume_to_the_same_outputs(tmp_path):
    out = tmp_path / "crash.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--train-kills", "1", "--predict-kills", "1",
                           "--eval-kills", "1", "--seed", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["all_equal"] and [t["kind"] for t in report["trials"]] == ["train", "predict", "eval"]
