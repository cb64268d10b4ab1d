"""Write constraints.txt: the exact release of every package `r1omni[dev]` needs, as installed here.

pyproject.toml declares ranges (what r1omni is tested on), so that `pip install r1omni` keeps a
user's own torch and friends; CI and `scripts/setup.sh` install with `-c constraints.txt`, so that
every CI run gets the releases the last lock saw pass. Run after upgrading a package on purpose:

    python scripts/lock.py            # rewrites constraints.txt from this environment
    python scripts/lock.py --check    # exits 1 when the installed releases differ from the file
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("# The releases CI installs (scripts/setup.sh: pip install -c constraints.txt). Written by\n"
          "# python scripts/lock.py from a passing environment; pyproject.toml holds the ranges r1omni allows.\n")


def closure(root: str, extras: set[str]) -> dict[str, str]:
    """{name: installed version} of `root` (with `extras`) and everything it needs, recursively."""
    found: dict[str, str] = {}
    seen: set[tuple[str, frozenset]] = set()
    waiting = [(root, frozenset(extras))]
    while waiting:
        name, wanted = waiting.pop()
        if (canonicalize_name(name), wanted) in seen:
            continue
        seen.add((canonicalize_name(name), wanted))
        dist = metadata.distribution(name)
        found[canonicalize_name(dist.metadata["Name"])] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or any(requirement.marker.evaluate({"extra": e}) for e in wanted or {""}):
                waiting.append((requirement.name, frozenset(requirement.extras)))
    found.pop(canonicalize_name(root))
    return found


def render(versions: dict[str, str]) -> str:
    # A local label (2.13.0+cpu) is dropped: ==2.13.0 admits it, and the CUDA builds share the number.
    return HEADER + "".join(f"{name}=={version.split('+')[0]}\n" for name, version in sorted(versions.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with constraints.txt instead of writing it")
    args = parser.parse_args(argv)
    text, path = render(closure("r1omni", {"dev"})), ROOT / "constraints.txt"
    if args.check:
        same = path.is_file() and path.read_text() == text
        print("constraints.txt matches this environment" if same else "constraints.txt differs from this environment")
        return 0 if same else 1
    path.write_text(text)
    print(f"wrote {path} ({text.count(chr(10)) - 2} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
