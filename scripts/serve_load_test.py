"""Load test of `r1omni serve`: many clients at once through Gradio's client API, mixing good clips,
broken files, over-limit uploads, long batches and requests that probe the server's files.

    python scripts/serve_load_test.py                        # 16 clients, 5 minutes (docs/input.md)
    python scripts/serve_load_test.py --clients 4 --seconds 20 --timeout 8 --keep-uploads-min 0.5  # CI's size

It builds a tiny model and a few synthetic clips (or serves --model DIR), starts `r1omni serve` on
a free port with its temporary files under a folder of its own, and checks:
- the server is alive throughout and at the end;
- every request is answered, with a result or a clear message (a client error that is neither,
  a dropped connection or a hung request, fails the run);
- no answer holds a server path or a line of a server file;
- the server's peak memory (RSS, with its children) stays under --max-rss-mb;
- the server's disk use is back to where it started once the retention time has passed.
It prints latencies (p50/p95) per kind of request and writes the figures as JSON (--out).
Exit status 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from r1omni.serve.analysis import BUSY
from r1omni.serve.examples import example_clips

OUTCOMES = ("result", "message", "busy", "failure")  # busy: a full queue or an overrun, answered at once
SECRET_LINE = "root:x:0:0"  # /etc/passwd's first line: must never come back
PROBED_PATHS = ["/etc/passwd", "/etc/shadow", "/root/.ssh/id_rsa", "../../../../etc/passwd", "/proc/self/environ"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its children, MiB (from /proc)."""
    total = 0
    for proc in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        found = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return found + [g for c in found for g in _children(c)]


def disk_mb(folder: Path) -> float:
    """MiB of the files under `folder`; files the server deletes during the count are skipped."""
    total = 0
    for inner, _, names in os.walk(folder):  # os.walk ignores folders that vanish under it
        for name in names:
            try:
                total += os.stat(os.path.join(inner, name)).st_size
            except FileNotFoundError:
                continue
    return total / 2**20


def build_inputs(work: Path, model: Path | None) -> tuple[Path, dict]:
    """A model (tiny, built from its preset) and the files the clients send."""
    if model is None:
        model = work / "nano"
        subprocess.run([sys.executable, "-m", "r1omni.cli", "model", "init", "--preset", "nano", "--out", str(model)],
                       check=True, capture_output=True)
    clips = [path for path, _ in example_clips(work / "world", 8)]
    files = {"clips": clips}
    files["broken"] = work / "broken.mp4"
    files["broken"].write_text("not a video")
    files["oversized"] = work / "oversized.mp4"
    files["oversized"].write_bytes(os.urandom(3 * 2**20))  # over the 2 MB cap set below
    uploaded = work / "probe_manifest.jsonl"  # an uploaded manifest whose media name the server's files
    uploaded.write_text("".join(json.dumps({"id": f"p{i}", "label": "happy", "dataset": "probe", "video": path}) + "\n"
                                for i, path in enumerate(PROBED_PATHS)))
    files["probe_manifest"] = uploaded
    data_root = work / "data"  # the operator's data folder: one manifest inside, probes aim outside it
    data_root.mkdir()
    shutil.copy(clips[0], data_root / clips[0].name)
    (data_root / "inside.jsonl").write_text(json.dumps({"id": "inside", "label": "sad", "dataset": "d",
                                                        "video": clips[0].name}) + "\n")
    return model, files


class Answers:
    """Every request's kind, seconds and outcome (result / message / failure) and its text."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[dict] = []

    def add(self, kind: str, seconds: float, outcome: str, text: str) -> None:
        with self.lock:
            self.rows.append({"kind": kind, "seconds": seconds, "outcome": outcome, "text": text})


def raw_call(url: str, api: str, data: list, timeout: float) -> str:
    """A call through Gradio's HTTP API as a hand-made client sends it: here, file inputs that
    name server paths instead of uploads. Returns the event stream's text."""
    request = urllib.request.Request(f"{url}gradio_api/call/{api}", json.dumps({"data": data}).encode(),
                                     {"Content-Type": "application/json"})
    try:
        event = json.loads(urllib.request.urlopen(request, timeout=timeout).read())["event_id"]
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}: {err.read().decode(errors='replace')}"
    return urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event}", timeout=timeout).read().decode()


def requests_for(files: dict, url: str):
    """(kind, function of a client) for each kind of request, cycled by the clients."""
    from gradio_client import handle_file

    clips = files["clips"]

    def clip(client):
        return client.predict(handle_file(str(clips[0])), None, "video_audio", api_name="/recognise")

    def broken(client):
        return client.predict(handle_file(str(files["broken"])), None, "video_audio", api_name="/recognise")

    def oversized(client):  # sent as a hand-made client would, past gradio_client's own check of the cap
        import httpx

        with files["oversized"].open("rb") as handle:
            answer = httpx.post(f"{url}gradio_api/upload", files={"files": handle}, timeout=120)
        if answer.status_code < 400:
            raise RuntimeError(f"an upload over the cap was accepted: {answer.text[:200]}")
        return f"HTTP {answer.status_code}: {answer.text}"

    def long_batch(client):  # every clip five times over: long enough to meet the deadline under load
        batch = [handle_file(str(c)) for c in clips] * 5
        return client.predict(batch, "", "video_audio", api_name="/recognise_all")

    def probe_manifest(client):
        return client.predict([handle_file(str(files["probe_manifest"]))], "", "video_audio",
                              api_name="/recognise_all")

    def probe_path(client):
        return client.predict([], next(PROBES), "video_audio", api_name="/recognise_all")

    def server_file_input(client):
        return raw_call(url, "recognise", [{"path": next(PROBES), "meta": {"_type": "gradio.FileData"}},
                                                  None, "video_audio"], 120)

    # The quick probes first: every client (starting at its own place in the list) sends each kind
    # within its first few requests, however short the run.
    return [("uploaded manifest naming server files", probe_manifest),
            ("manifest path outside the data folder", probe_path),
            ("server path as a file input", server_file_input), ("over-limit upload", oversized),
            ("broken file", broken), ("clip", clip), ("long batch", long_batch)]


EXTRA_PROBES = ["inside.jsonl/../../etc/passwd", "data/../../etc/passwd"]
PROBES = itertools.cycle(PROBED_PATHS + EXTRA_PROBES)


def client_loop(url: str, kinds, answers: Answers, until: float, offset: int) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from gradio_client.utils import QueueError

    client = Client(url, verbose=False)
    for step in itertools.count(offset):
        if time.monotonic() > until:
            return
        kind, call = kinds[step % len(kinds)]
        started = time.monotonic()
        try:
            result = call(client)
            text = json.dumps(result, default=str)
            outcome = "busy" if "queue_full" in text.lower() or "queue is full" in text.lower() else \
                "message" if "event: error" in text or text.startswith('"HTTP 4') else "result"
        except QueueError as err:  # Gradio's queue is full: answered at once, "try again"
            outcome, text = "busy", str(err)
        except AppError as err:  # the page's message (gr.Error), or Gradio's own refusal
            outcome, text = "busy" if BUSY in str(err) else "message", str(err)
        except Exception as err:  # noqa: BLE001 - anything else is a request not answered
            outcome, text = "failure", f"{type(err).__name__}: {err}"
        answers.add(kind, time.monotonic() - started, outcome, text)


def leaks(text: str, secrets: list[str]) -> list[str]:
    """The server paths or file contents found in an answer, beyond the visitor's own words (a
    refusal may repeat the path the visitor asked for)."""
    for probe in sorted(set(PROBED_PATHS + EXTRA_PROBES), key=len, reverse=True):
        text = text.replace(probe, "")
    return [s for s in secrets if s in text] + ([SECRET_LINE] if SECRET_LINE in text else [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--keep-uploads-min", type=float, default=3.0, help="the server's retention time (more "
                        "than --queue-size x --timeout, the longest a request can wait)")
    parser.add_argument("--queue-size", type=int, default=8, help="the server's queue (under --clients, so that "
                        "it fills)")
    parser.add_argument("--timeout", type=float, default=20, help="the server's per-request time limit")
    parser.add_argument("--max-rss-mb", type=float, default=2048, help="bound on the server's peak memory")
    parser.add_argument("--model", type=Path, help="a model to serve (default: a tiny one built here)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="r1omni-load-"))
    server_tmp = work / "server_tmp"
    server_tmp.mkdir()
    print("building a model and clips", flush=True)
    model, files = build_inputs(work, args.model)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = (work / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "r1omni.cli", "serve", "--model", str(model), "--port", str(port), "--max-upload-mb",
         "2", "--timeout", str(args.timeout), "--keep-uploads-min", str(args.keep_uploads_min),
         "--queue-size", str(args.queue_size),
         "--data-root", str(work / "data"), "--max-new-tokens", "16"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(server_tmp)})
    checks, peak, disk_peak = {}, [0.0], [0.0]
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                raise SystemExit(f"r1omni serve exited: {(work / 'serve.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("r1omni serve did not answer within 3 minutes") from None
                time.sleep(0.5)
        disk_before = disk_mb(server_tmp)
        print(f"serving on {url}; {args.clients} clients for {args.seconds:.0f} s", flush=True)
        alive, stop = [True], threading.Event()

        def watch():
            while not stop.wait(0.5):
                peak[0] = max(peak[0], rss_mb(server.pid))
                disk_peak[0] = max(disk_peak[0], disk_mb(server_tmp))
                alive[0] = alive[0] and server.poll() is None

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        answers, kinds = Answers(), requests_for(files, url)
        until = time.monotonic() + args.seconds
        started = time.monotonic()
        clients = [threading.Thread(target=client_loop, args=(url, kinds, answers, until, i), daemon=True)
                   for i in range(args.clients)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(args.seconds + 10 * args.timeout + 300)
        hung = sum(thread.is_alive() for thread in clients)
        load = os.getloadavg()  # of the minutes under load, before the retention wait
        print(f"clients done ({hung} hung); waiting out the retention time", flush=True)
        wall = time.monotonic() - started
        stop.set()
        watcher.join()
        secrets = [str(server_tmp), str(work / "data"), str(model.resolve())]
        leaked = [(row["kind"], found) for row in answers.rows
                  for found in leaks(row["text"] if row["outcome"] != "result" else _texts(row["text"]), secrets)]
        checks["alive throughout"] = alive[0] and server.poll() is None
        checks["every request answered"] = hung == 0 and not any(r["outcome"] == "failure" for r in answers.rows)
        checks["no server path or file content in an answer"] = not leaked
        checks[f"peak RSS under {args.max_rss_mb:.0f} MiB"] = peak[0] < args.max_rss_mb
        # An upload deleted while its request waited in the queue: the retention time is too short
        # for the queue (it must exceed --queue-size x --timeout).
        checks["no upload deleted before its request ran"] = not any(
            "file not found" in r["text"] for r in answers.rows if r["kind"] in ("clip", "broken file", "long batch"))
        retention = args.keep_uploads_min * 60
        time.sleep(retention + max(1.0, min(60.0, retention / 4)) + 5)  # past the age, and one sweep after it
        disk_after = disk_mb(server_tmp)
        checks["disk back to its start after the retention time"] = disk_after <= disk_before + 0.01
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    checks["nothing of the server's left on disk once it stops"] = not any(server_tmp.iterdir())
    summary = _summary(answers.rows, wall)
    report = {"clients": args.clients, "seconds": args.seconds, "wall_s": round(wall, 1), "timeout_s": args.timeout,
              "keep_uploads_min": args.keep_uploads_min, "peak_rss_mb": round(peak[0], 1),
              "disk_mb_before": round(disk_before, 2), "disk_mb_peak": round(disk_peak[0], 2),
              "disk_mb_after_retention": round(disk_after, 2),
              "requests": len(answers.rows), "by_kind": summary, "checks": checks, "leaks": leaked[:20],
              "failures": [r["text"][:300] for r in answers.rows if r["outcome"] == "failure"][:20],
              "hung_clients": hung, "cpu_count": os.cpu_count(), "load_average": load,
              "examples": {f"{kind}: {outcome}": next((r["text"][:300] for r in answers.rows
                                                       if r["kind"] == kind and r["outcome"] == outcome), None)
                           for kind, _ in kinds for outcome in OUTCOMES}}
    _print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(checks.values()) else 1


def _texts(result_json: str) -> str:
    """A result's text for the leak check, without the local copies gradio_client made of file
    outputs (the client's own download folder, not the server's)."""
    result = json.loads(result_json)
    items = result if isinstance(result, list) else [result]
    return json.dumps([item for item in items if not (isinstance(item, str) and Path(item).is_absolute())],
                      default=str)


def _summary(rows: list[dict], wall: float) -> dict:
    out = {}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = [r for r in rows if r["kind"] == kind]
        seconds = np.array([r["seconds"] for r in mine])
        out[kind] = {"n": len(mine), **{o: sum(r["outcome"] == o for r in mine) for o in OUTCOMES},
                     "p50_s": round(float(np.percentile(seconds, 50)), 2),
                     "p95_s": round(float(np.percentile(seconds, 95)), 2)}
    return out


def _print(report: dict) -> None:
    print(f"{report['clients']} clients for {report['seconds']:.0f} s ({report['wall_s']} s with the last answers), "
          f"{report['requests']} requests; {report['cpu_count']} cores, load {report['load_average'][0]:.2f}")
    print(f"{'request':42} {'n':>5} {'result':>7} {'message':>8} {'busy':>5} {'failure':>8} {'p50 s':>7} "
          f"{'p95 s':>7}")
    for kind, row in report["by_kind"].items():
        print(f"{kind:42} {row['n']:5d} {row['result']:7d} {row['message']:8d} {row['busy']:5d} {row['failure']:8d} "
              f"{row['p50_s']:7.2f} {row['p95_s']:7.2f}")
    print(f"peak RSS {report['peak_rss_mb']:.0f} MiB; disk {report['disk_mb_before']:.2f} MiB before, "
          f"{report['disk_mb_peak']:.2f} MiB at most, {report['disk_mb_after_retention']:.2f} MiB after the "
          "retention time")
    for name, held in report["checks"].items():
        print(f"  {'ok  ' if held else 'FAIL'} {name}")
    for failure in report["failures"][:5]:
        print(f"  failure: {failure}")
    for kind, found in report["leaks"][:5]:
        print(f"  leak in {kind}: {found}")


if __name__ == "__main__":
    sys.exit(main())
