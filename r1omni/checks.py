"""Checks every settings dataclass runs on itself: numbers in their ranges, names among their choices."""

from __future__ import annotations

import math


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


RANGES = {"> 0": lambda v: v > 0, ">= 0": lambda v: v >= 0, ">= 1": lambda v: v >= 1, ">= 2": lambda v: v >= 2,
          "in [0, 1)": lambda v: 0 <= v < 1, "in (0, 1]": lambda v: 0 < v <= 1}


def range_problems(items: list[tuple[str, float | int | None, str]]) -> list[str]:
    """A message for each (name, value, rule of RANGES) whose value breaks its rule; None is "not set"."""
    return [f"{name} must be {rule}, got {value!r}" for name, value, rule in items
            if value is not None and not RANGES[rule](value)]


def choice_problems(items: list[tuple[str, object, tuple]]) -> list[str]:
    """A message for each (name, value, allowed) whose value is not among the allowed."""
    return [f"{name} must be one of {', '.join(allowed)}, got {value!r}" for name, value, allowed in items
            if value not in allowed]
