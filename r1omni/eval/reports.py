"""Reports of scores: confusion matrices and per-class recall plots, tables for the terminal and Markdown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from r1omni.eval.metrics import Scores

OTHER = "(other)"  # confusion-matrix column for unparsable or out-of-class predictions


def plot_confusion(scores: Scores, path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix as a PNG, counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = scores.confusion
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    columns = scores.classes + [OTHER]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(columns), 1.0 + 0.6 * len(scores.classes)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(scores.classes)), scores.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(title or f"UAR {scores.uar:.1%}  WAR {scores.war:.1%}  (n={scores.n})")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def scores_table(scores: Scores, title: str = "evaluation"):
    """The scores as a rich table: headline metrics, then recall per class."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    ci = scores.intervals or {}
    table.add_row("UAR", f"{scores.uar:.2%}" + (f" [{ci['uar'][0]:.1%}, {ci['uar'][1]:.1%}]" if "uar" in ci else ""))
    table.add_row("WAR", f"{scores.war:.2%}" + (f" [{ci['war'][0]:.1%}, {ci['war'][1]:.1%}]" if "war" in ci else ""))
    table.add_row("format pass rate", "—" if scores.format_rate is None else f"{scores.format_rate:.2%}")
    table.add_row("unparsable rate", f"{scores.unparsable_rate:.2%}")
    table.add_row("clips", str(scores.n))
    faith = scores.faithfulness
    if faith:
        for key in ("precision", "recall", "f1", "wrong_modality_rate"):
            value = faith[key]
            table.add_row(f"claim {key.replace('_', ' ')}", "—" if value is None else f"{value:.2%}")
        for name, agreement in (faith.get("per_attribute") or {}).items():
            value = agreement["agreement"]
            table.add_row(f"stated {name} agrees", "—" if value is None else
                          f"{value:.2%} of {agreement['stated']} stated")
    if scores.faces:
        table.add_row("face found", face_line(scores.faces))
    for label, recall in scores.per_class.items():
        table.add_row(f"recall {label}", f"{recall:.2%}")
    return table


def face_line(faces: dict) -> str:
    """How often the face search found a face (r1omni.media.face_rate), in words."""
    frames = faces["frames_with_face"] / faces["frames"] if faces["frames"] else 0.0
    return (f"in {faces['clips_with_face']} of {faces['clips']} clips ({faces['clip_rate']:.1%}), {frames:.1%} of "
            f"frames; several faces in {faces['clips_with_several_faces']} clips")


def plot_per_class_recall(results: dict[str, Scores], path: str | Path) -> Path:
    """Grouped bars: recall per class for each named result (e.g. each modality setting)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = next(iter(results.values())).classes
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(classes), 3.6))
    for k, (name, scores) in enumerate(results.items()):
        values = [scores.per_class.get(c, np.nan) for c in classes]  # no bar for a class without clips
        ax.bar(np.arange(len(classes)) + (k - (len(results) - 1) / 2) * width, values, width,
               label=f"{name} (UAR {scores.uar:.1%})")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _with_interval(value: float | None, interval: list[float] | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" + (f" [{interval[0]:.1%}, {interval[1]:.1%}]" if interval else "")


def faithfulness_lines(results: dict[str, Scores]) -> list[str]:
    """Markdown on how the reasoning's claims hold against what was measured, per setting: the
    headline with intervals, per modality, and per voice attribute or per cue."""
    lines = []
    for name, s in results.items():
        faith = s.faithfulness
        if not faith:
            continue
        wrong = faith["wrong_modality_rate"]
        lines += ["", f"Claims of the reasoning against the measurement ({name}, {faith['n']} clips, "
                  f"{faith['claims']} claims judged): precision "
                  f"{_with_interval(faith['precision'], faith['precision_ci'])}, "
                  f"recall {_with_interval(faith['recall'], faith['recall_ci'])}, claims about the wrong modality "
                  f"{'—' if wrong is None else f'{wrong:.1%}'}, clips without a claim {faith['no_claims_rate']:.1%}.",
                  "", "| claims of | judged | precision | to make | recall |", "|---|---|---|---|---|"]
        for group in ("per_modality", "per_cue"):
            for key, g in faith[group].items():
                lines.append(f"| {key} | {g['claims']} | {_with_interval(g['precision'], None)} | {g['measured']} | "
                             f"{_with_interval(g['recall'], None)} |")
        attributes = faith.get("per_attribute") or {}
        if attributes:
            lines += ["", "| voice attribute | clips stating it | stated levels | agree with the measurement |",
                      "|---|---|---|---|"]
            lines += [f"| {key} | {a['stated_rate']:.1%} | {a['stated']} | "
                      f"{_with_interval(a['agreement'], a['agreement_ci'])} |" for key, a in attributes.items()]
    return lines


def group_lines(results: dict[str, Scores]) -> list[str]:
    """Per-corpus and per-speaker scores, for each grouping with more than one group."""
    lines = []
    for grouping in ("corpus", "speaker"):
        for name, s in results.items():
            groups = (s.groups or {}).get(grouping) or {}
            if len(groups) < 2:
                continue
            lines += ["", f"By {grouping} ({name}; UAR over the classes each has):", "",
                      f"| {grouping} | n | classes | UAR [95% CI] | WAR |", "|---|---|---|---|---|"]
            lines += [f"| {group} | {g['n']} | {g['classes']} | {_with_interval(g['uar'], g['uar_ci'])} | "
                      f"{g['war']:.1%} |" for group, g in groups.items()]
    return lines


def markdown_report(results: dict[str, Scores], title: str) -> str:
    """A Markdown table of the headline metrics per named result, then recall per class."""
    lines = [f"# {title}", "", "| setting | n | left out | UAR [95% CI] | WAR [95% CI] | format | unparsable | "
             "cue precision | cue recall |", "|---|---|---|---|---|---|---|---|---|"]

    def pct(value):
        return "—" if value is None else f"{value:.1%}"

    for name, s in results.items():
        faith = s.faithfulness or {}
        ci = s.intervals or {}
        lines.append(f"| {name} | {s.n} | {len(s.left_out)} | {_with_interval(s.uar, ci.get('uar'))} | "
                     f"{_with_interval(s.war, ci.get('war'))} | {pct(s.format_rate)} | "
                     f"{pct(s.unparsable_rate)} | {pct(faith.get('precision'))} | {pct(faith.get('recall'))} |")
    lines += faithfulness_lines(results)
    classes = next(iter(results.values())).classes
    lines += ["", "Recall per class:", "", "| setting | " + " | ".join(classes) + " |",
              "|---|" + "---|" * len(classes)]
    for name, s in results.items():
        lines.append(f"| {name} | " + " | ".join(pct(s.per_class.get(c)) for c in classes) + " |")
    lines.append("\n— : no clip of that class was scored.")
    lines += group_lines(results)
    for name, s in results.items():
        if s.faces:
            lines += ["", f"Face found ({name}): {face_line(s.faces)}. A clip without a face is read whole "
                      "(docs/input.md, 'Faces')."]
    dropped = next(iter(results.values())).dropped_labels
    if dropped:
        lines += ["", "Dropped, labels the model was not trained on: "
                  + ", ".join(f"{label} ({count} rows)" for label, count in dropped.items())]
    left_out = {name: s.left_out for name, s in results.items() if s.left_out}
    for name, rows in left_out.items():
        lines += ["", f"Left out of {name} ({len(rows)} rows whose media could not be read):", ""]
        lines += [f"- {clip}: {error}" for clip, error in list(rows.items())[:50]]
        if len(rows) > 50:
            lines.append(f"- … and {len(rows) - 50} more (predictions file)")
    return "\n".join(lines) + "\n"
