"""Progress of long work: rich's live bars on a terminal, plain timestamped lines at intervals
when output goes to a file or a pipe (a CI log, `nohup`), where live bars print nothing; and
the seconds each named stage of the work took (`StageTimer`)."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from contextlib import contextmanager

from rich.console import Console

LINE_EVERY_S = 30.0  # seconds between progress lines when the output is not a terminal


def progress_bar(*columns, transient: bool = False, disable: bool = False, every: float = LINE_EVERY_S):
    """A rich `Progress` on a terminal, else a `LineProgress` with the same calls."""
    from rich.progress import Progress

    if disable or Console().is_terminal:
        return Progress(*columns, transient=transient, disable=disable)
    return LineProgress(every)


class LineProgress:
    """`add_task`, `update` and `console.print` as rich's Progress has them; prints one line per
    task when `every` seconds have passed since its last line, and when it completes."""

    def __init__(self, every: float = LINE_EVERY_S, stream=None):
        self.every = every
        self.console = Console(file=stream or sys.stdout, soft_wrap=True)
        self.tasks: dict[int, dict] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields) -> int:
        now = time.monotonic()
        self.tasks[len(self.tasks)] = {"description": description, "total": total, "completed": completed,
                                       "fields": fields, "started": now, "printed": now}
        return len(self.tasks) - 1

    def update(self, task: int, completed: float | None = None, advance: float | None = None, **fields) -> None:
        state = self.tasks[task]
        if completed is not None:
            state["completed"] = completed
        if advance is not None:
            state["completed"] += advance
        state["fields"].update(fields)
        now = time.monotonic()
        finished = state["total"] is not None and state["completed"] >= state["total"]
        if finished and state.get("done"):
            return
        if finished or now - state["printed"] >= self.every:
            state["printed"], state["done"] = now, finished
            self.console.print(self.line(state, now), highlight=False)

    @staticmethod
    def line(state: dict, now: float) -> str:
        done, total = state["completed"], state["total"]
        count = f"{done:g}/{total:g} ({100 * done / total:.0f}%)" if total else f"{done:g}"
        status = " ".join(str(v) for v in state["fields"].values() if v != "")
        return f"[{time.strftime('%H:%M:%S')}] {state['description']} {count} {now - state['started']:.0f} s {status}"


class StageTimer:
    """Seconds spent in each named stage, summed over the stage's entries:
    ``with timer("generate"): ...``, then ``timer.totals`` or ``timer.metrics()``."""

    def __init__(self):
        self.totals: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.totals[stage] += time.perf_counter() - started

    def metrics(self) -> dict[str, float]:
        return {f"time_{stage}": round(seconds, 4) for stage, seconds in self.totals.items()}
