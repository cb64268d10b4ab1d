"""What the recipe scripts share: each step an r1omni command (or a function) run once, its wall
time kept in OUT/steps.json, so that an interrupted recipe continues where it stopped."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Steps:
    """Runs commands once, recording each one's wall time in OUT/steps.json (or another record:
    a script adding runs to a recipe's OUT keeps its times out of the recipe's total)."""

    def __init__(self, out: Path, record: str = "steps.json"):
        self.path = out / record
        self.seconds = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def run(self, name: str, done: Path, command: list[str] | None = None, action=None) -> None:
        """Run `command` (or call `action`) unless `done` exists from an earlier run of `name`."""
        if done.exists() and name in self.seconds:
            print(f"[{name}] done before ({self.seconds[name]:.0f} s): {done}")
            return
        print(f"[{name}] {' '.join(command) if command else '(in this process)'}", flush=True)
        started = time.perf_counter()
        if command:
            subprocess.run(command, check=True, cwd=ROOT)
        else:
            action()
        self.record(name, time.perf_counter() - started)

    def record(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(seconds, 1)
        self.path.write_text(json.dumps(self.seconds, indent=2) + "\n")


def r1omni(*args) -> list[str]:
    """An r1omni command line, run by this Python."""
    return [sys.executable, "-m", "r1omni.cli", *map(str, args)]


def percent(value: float | None, interval: list[float] | None = None) -> str:
    """A fraction as a table cell: "86.7% [80.9%, 92.3%]", or "—" for none."""
    if value is None:
        return "—"
    return f"{value:.1%}" + (f" [{interval[0]:.1%}, {interval[1]:.1%}]" if interval else "")
