"""A readable account of a dataset scan: clips per label, speaker and fold, and every file
left out with the reason."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from r1omni.data.scan import ScanResult

SHOWN = 20  # problem files printed; the full list goes to a TSV beside the manifest


def _counts_table(title: str, counts) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(title.split()[-1])
    table.add_column("clips", justify="right")
    for key, n in sorted(counts.items(), key=lambda kv: (kv[0] is None, str(kv[0]).zfill(8))):
        table.add_row("—" if key is None else str(key), str(n))
    return table


def write_problems(result: ScanResult, manifest: Path) -> Path | None:
    """`<manifest>.problems.tsv` listing every skipped and missing file, or None if none."""
    if not (result.skipped or result.missing):
        return None
    path = manifest.with_suffix(".problems.tsv")
    lines = ["kind\tfile\treason"]
    lines += [f"skipped\t{f}\t{why}" for f, why in result.skipped]
    lines += [f"missing\t{name}\tlisted at {where} but not found under the root" for name, where in result.missing]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def print_summary(result: ScanResult, manifest: Path, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]{len(result.rows)}[/] clips written to {manifest}")
    console.print(_counts_table("clips per label", result.count("label")))
    speakers = result.count("speaker")
    if any(speakers):
        console.print(f"clips per speaker ({len(speakers)} speakers): "
                      + ", ".join(f"{s}: {n}" for s, n in sorted(speakers.items(), key=lambda kv: str(kv[0]))))
    for key in ("fold", "split"):
        counts = result.count(key)
        if any(k is not None for k in counts):
            console.print(_counts_table(f"clips per {key}", counts))
    problems = write_problems(result, manifest)
    console.print(f"files skipped: {len(result.skipped)}; files missing: {len(result.missing)}")
    for path, why in result.skipped[:SHOWN]:
        console.print(f"  [yellow]skipped[/] {escape(path)}: {escape(why)}", highlight=False, soft_wrap=True)
    for name, where in result.missing[:max(0, SHOWN - len(result.skipped))]:
        console.print(f"  [red]missing[/] {escape(name)} (listed at {escape(where)})", highlight=False, soft_wrap=True)
    if problems is not None:
        console.print(f"every skipped and missing file is listed in {problems}")
