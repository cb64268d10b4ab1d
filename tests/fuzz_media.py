"""Fuzz the decoders: every call on a damaged file returns or raises `MediaError`, in bounded time
and memory.

    python tests/fuzz_media.py --files 1200 --out runs/fuzz

mutates small valid clips, images and audio files of every kind (and Emo-DB recordings when
R1OMNI_DATA holds them) plus crafted headers, sometimes under a wrong extension; then runs
`probe`, `read_frames` (a fixed and the native size) and `read_audio` (the whole track) on each
in a worker process with an address-space limit, restarting it after a timeout or crash. Prints
a table of outcomes per mutation and writes results.jsonl. tests/media/test_fuzz.py runs a few
hundred files of it in the suite; docs/input.md quotes a longer run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

EXTENSIONS = [".mp4", ".mkv", ".avi", ".webm", ".wav", ".flac", ".mp3", ".m4a", ".ogg", ".png", ".jpg"]


def make_files(out: Path, count: int, seed: int = 0, recordings: list[Path] = ()) -> list[tuple[Path, str]]:
    """`count` damaged files under `out` (the crafted ones among them), with what was done to
    each; made from synthetic files of every kind and the real `recordings`."""
    from hostile_media import crafted, mutate, seed_files

    rng = np.random.default_rng(seed)
    sources = seed_files(out / "seeds") + list(recordings)
    files = [(path, f"crafted:{name}") for name, (path, _) in crafted(out / "crafted").items()]
    blobs = [p.read_bytes() for p in sources]
    folder = out / "files"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count - len(files)):
        k = int(rng.integers(len(sources)))
        kind, data = mutate(blobs[k], rng, blobs[int(rng.integers(len(blobs)))])
        suffix = sources[k].suffix
        if rng.random() < 0.15:
            suffix, kind = str(rng.choice(EXTENSIONS)), kind + "+ext"
        path = folder / f"{i:05d}_{sources[k].stem}{suffix}"
        path.write_bytes(data)
        files.append((path, kind))
    return files


def own_peak_mb() -> float:
    """This process's peak resident memory. Not `ru_maxrss`: on Linux a child started by fork/exec
    inherits its parent's peak there, so a worker spawned from a large pytest process would report
    pytest's memory, not its own. VmHWM belongs to the process's own address space."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no procfs: the best there is


def worker(memory_mb: int) -> None:
    """Read paths from stdin; for each, one JSON line of outcomes on stdout."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    from r1omni.errors import MediaError, MissingStreamError
    from r1omni.media import probe, read_audio, read_frames

    calls = {"probe": probe, "frames": lambda p: read_frames(p, 4, 64),
             "frames_native": lambda p: read_frames(p, 2, None), "audio": lambda p: read_audio(p, max_seconds=None)}
    for line in sys.stdin:
        path, outcomes, started = line.rstrip("\n"), {}, time.perf_counter()
        for name, call in calls.items():
            try:
                call(path)
                outcomes[name] = "ok"
            except MissingStreamError:  # an audio file asked for frames: a correct answer
                outcomes[name] = "ok"
            except MediaError:
                outcomes[name] = "MediaError"
            except Exception as err:  # noqa: BLE001 (what the fuzz run exists to find)
                outcomes[name] = f"{type(err).__name__}: {str(err)[:120]}"
        print(json.dumps({"outcomes": outcomes, "seconds": time.perf_counter() - started, "peak_mb": own_peak_mb()}),
              flush=True)


def run(files: list[tuple[Path, str]], timeout: float = 30.0, memory_mb: int = 4096, say=print) -> list[dict]:
    """Each file through a worker process; a file that takes longer than `timeout` seconds or
    ends the worker is recorded as such, and a fresh worker takes the next file."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, __file__, "--worker", "--memory-mb", str(memory_mb)]
    results, process, started = [], None, time.perf_counter()
    for n, (path, kind) in enumerate(files, 1):
        if process is None:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        process.stdin.write(f"{path}\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if ready else ""
        if line:
            result = json.loads(line)
        else:
            process.kill()
            process.wait()
            result = {"outcomes": {"all": "timeout" if not ready else f"worker died ({process.returncode})"},
                      "seconds": timeout if not ready else None, "peak_mb": None}
            process = None
        results.append({"file": str(path), "mutation": kind, **result})
        if n % 100 == 0:
            say(f"{n}/{len(files)} files, {time.perf_counter() - started:.0f} s")
    if process is not None:
        process.stdin.close()
        process.wait()
    return results


def verdict(result: dict) -> str:
    """ok (every call returned), MediaError (some call refused the file cleanly) or the failure."""
    outcomes = set(result["outcomes"].values())
    bad = sorted(o for o in outcomes if o not in ("ok", "MediaError"))
    return bad[0].split(":")[0] if bad else "MediaError" if "MediaError" in outcomes else "ok"


def table(results: list[dict]) -> str:
    rows = defaultdict(Counter)
    for r in results:
        rows[r["mutation"].split(":")[0]][verdict(r)] += 1
    kinds = ["ok", "MediaError"] + sorted({v for c in rows.values() for v in c} - {"ok", "MediaError"})
    lines = ["| mutation | files | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 2) + "|"]
    for name, counts in sorted(rows.items()):
        lines.append(f"| {name} | {sum(counts.values())} | " + " | ".join(str(counts[k]) for k in kinds) + " |")
    seconds = [r["seconds"] for r in results if r["seconds"] is not None]
    peaks = [r["peak_mb"] for r in results if r["peak_mb"] is not None]
    lines.append(f"\n{len(results)} files; slowest file {max(seconds):.2f} s (all four calls), "
                 f"median {np.median(seconds) * 1000:.0f} ms; worker peak memory {max(peaks):.0f} MB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1200)
    parser.add_argument("--out", type=Path, default=Path("runs/fuzz"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one file may take")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address-space limit of the worker")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.memory_mb)
    load = os.getloadavg()[0]
    from corpora import DATA

    files = make_files(args.out, args.files, args.seed, sorted((DATA / "emodb" / "wav").glob("*.wav"))[:20])
    results = run(files, args.timeout, args.memory_mb)
    (args.out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    print(table(results))
    print(f"load average at the start {load:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
