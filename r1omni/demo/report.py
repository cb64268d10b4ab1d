"""The demo's outputs: results.json, run.json, report.md with its table, verdicts and GRPO curves,
and the summary over several seeds.

Verdicts follow the evidence: a difference is called a win or a loss only when its 95% paired
bootstrap interval excludes zero; a stage that never wrote an answer is said to have not answered.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SAMPLE_CLIPS = 3
CONSOLE_HEADER = ["stage", "ID UAR", "ID WAR", "OOD UAR", "OOD WAR", "format"]
TABLE_HEADER = ["stage", "paper's row", "ID UAR", "ID WAR", "OOD UAR", "OOD WAR", "format", "answered",
                "conflict acc.", "cue P / R (ID)", "cue P / R (OOD)", "wrong modality (ID / OOD)", "reasoning ≠ answer"]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _with_interval(value: float, interval: list[float]) -> str:
    return f"{100 * value:.1f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def table_rows(results: dict, stages) -> list[list[str]]:
    rows = []
    for stage in stages:
        r = results[stage.name]
        ident, ood = r["id"], r["ood"]
        rows.append([stage.name, stage.paper, _with_interval(ident["uar"], ident["uar_ci"]),
                     _with_interval(ident["war"], ident["war_ci"]), _with_interval(ood["uar"], ood["uar_ci"]),
                     _with_interval(ood["war"], ood["war_ci"]), _percent(ident["format_rate"]),
                     _percent(ident["answered_rate"]), _percent(ident["conflict_war"]),
                     _precision_recall(ident), _precision_recall(ood),
                     f"{_percent(ident['wrong_modality_rate'])} / {_percent(ood['wrong_modality_rate'])}",
                     _percent(ident["mismatch_rate"])])
    return rows


def _precision_recall(r: dict) -> str:
    """Cue precision / recall, or a dash for a stage whose answers claim nothing (label SFT)."""
    if r["cue_precision"] is None and not r["cue_recall"]:
        return "–"
    return f"{_percent(r['cue_precision'])} / {_percent(r['cue_recall'])}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _judged(name: str, other: str, where: str, change: dict) -> str:
    """One sentence on a paired UAR difference and whether its interval excludes zero."""
    low, high = change["interval"]
    points = f"{100 * change['difference']:+.1f} points UAR, 95% interval [{100 * low:+.1f}, {100 * high:+.1f}]"
    if low > 0:
        return f"{name} beats {other} {where} ({points})"
    if high < 0:
        return f"{name} is worse than {other} {where} ({points})"
    return f"{name} and {other} do not differ measurably {where} ({points}: the interval includes zero)"


def verdicts(results: dict, differences: dict) -> list[str]:
    """Sentences that say what the table shows and no more."""
    lines = []
    for stage, r in results.items():
        if r["id"]["answered_rate"] == 0 and r["ood"]["answered_rate"] == 0:
            lines.append(f"{stage} wrote no emotion in <answer> tags on any clip, so its UAR and WAR are 0: "
                         "it did not answer, which is not the same as answering wrong.")
    for key, where in (("id", "in distribution"), ("ood", "out of distribution")):
        lines.append(_judged("GRPO", "label SFT", where, differences["grpo-label_sft"][key]["uar"]) + ".")
        lines.append(_judged("GRPO", "its cold start", where, differences["grpo-cold_start"][key]["uar"]) + ".")
        if "grpo_faithful-grpo" in differences:
            lines.append(_judged("GRPO with the faithfulness reward", "the paper's GRPO", where,
                                 differences["grpo_faithful-grpo"][key]["uar"]) + ".")
    if "grpo_faithful" in results:
        for key, where in (("id", "in distribution"), ("ood", "out of distribution")):
            a, b = results["grpo_faithful"][key], results["grpo"][key]
            lines.append(f"The reasoning's cue precision / recall {where}: {_claims(a)} with the faithfulness reward, "
                         f"{_claims(b)} without; claims about the wrong modality {_percent(a['wrong_modality_rate'])}% "
                         f"against {_percent(b['wrong_modality_rate'])}%.")
    return lines


def _claims(r: dict) -> str:
    """Cue precision and recall with their intervals, in percent."""
    def one(value, interval):
        if value is None:
            return "–"
        return f"{100 * value:.1f}" + (f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval else "")

    return f"{one(r['cue_precision'], r.get('cue_precision_ci'))} / {one(r['cue_recall'], r.get('cue_recall_ci'))}"


def grpo_curves(metrics_path: Path) -> dict[str, list[float]]:
    keys = ("reward", "accuracy", "format", "reward_faithfulness", "kl", "completion_length", "frac_reward_zero_std")
    curves: dict[str, list[float]] = {"step": [], **{k: [] for k in keys}}
    for line in metrics_path.read_text().splitlines():
        m = json.loads(line)
        if "reward" in m:
            curves["step"].append(m["step"])
            for k in keys:
                value = m.get(k)
                curves[k].append(float("nan") if value is None else value)
    return curves


def quarter_means(values: list[float]) -> list[float]:
    """Means of the four quarters of a run (the whole run when it is shorter than four steps)."""
    if len(values) < 4:
        return [sum(values) / len(values)] if values else []
    size = len(values) / 4
    return [sum(values[round(i * size):round((i + 1) * size)]) / (round((i + 1) * size) - round(i * size))
            for i in range(4)]


def plot_grpo(curves: dict[str, list[float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def smooth(values: list[float]) -> np.ndarray:
        window = max(1, len(values) // 10)
        return np.convolve(values, np.ones(window) / window, mode="valid")

    panels = (("reward", "accuracy", "format", "reward_faithfulness", "frac_reward_zero_std"), ("kl",),
              ("completion_length",))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, keys in zip(axes, panels):
        for key in keys:
            values = curves[key]
            if all(v != v for v in values):  # a reward this run did not use
                continue
            ax.plot(curves["step"], values, alpha=0.25)
            smoothed = smooth(values)
            ax.plot(curves["step"][len(values) - len(smoothed):], smoothed, label=key, color=ax.lines[-1].get_color())
        ax.set_xlabel("GRPO step")
        ax.legend(fontsize=8)
    axes[0].set_title("rewards and zero-variance groups")
    axes[1].set_title("KL to the cold start")
    axes[2].set_title("completion tokens")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _shorten(text: str, limit: int = 400) -> str:
    text = " ".join(text.split()).replace("`", "'").replace("|", "/")
    return (text[:limit] + " …") if len(text) > limit else (text or "(empty)")


def sample_reasoning(out: Path, stages, count: int = SAMPLE_CLIPS) -> list[dict]:
    """The first test clips' label and each stage's completion."""
    samples: list[dict] = []
    for stage in stages:
        lines = (out / "eval" / stage.name / "id" / "predictions.jsonl").read_text().splitlines()[:count]
        for i, line in enumerate(lines):
            row = json.loads(line)
            if len(samples) <= i:
                samples.append({"id": row["id"], "label": row["label"], "completions": {}})
            samples[i]["completions"][stage.name] = row["completion"]
    return samples


def write_outputs(result, stages, plan: dict, quick: bool, seed: int) -> None:
    out = result.out
    curves = {s.name: grpo_curves(out / s.name / "metrics.jsonl") for s in stages if s.kind == "grpo"}
    for name, stage_curves in curves.items():
        plot_grpo(stage_curves, out / f"{name}_curves.png")
    (out / "results.json").write_text(json.dumps({"stages": result.results, "differences": result.differences},
                                                 indent=2) + "\n")
    run = {"quick": quick, "seed": seed, "plan": plan, "seconds": result.seconds,
           "peak_memory_mb": result.peak_memory_mb,
           **{f"{name}_by_quarter": {k: quarter_means(v) for k, v in c.items() if k != "step"}
              for name, c in curves.items()}}
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    (out / "report.md").write_text(markdown_report(result, stages, plan, curves, quick, seed))


def markdown_report(result, stages, plan: dict, curves: dict, quick: bool, seed: int) -> str:
    results, seconds = result.results, result.seconds
    n_id, n_ood = results["grpo"]["id"]["n"], results["grpo"]["ood"]["n"]
    lines = [f"# r1omni demo{' (--quick)' if quick else ''}: the R1-Omni comparison on the synthetic world", "",
             f"Nano model, world seed {seed}. Test sets: `test` (in distribution, {n_id} clips) and `ood_test` "
             f"(unseen people, rendering and recording channel, {n_ood} clips). Percent, with 95% bootstrap "
             "intervals over clips. format: completions in the `<think>…</think><answer>…</answer>` shape; "
             "answered: completions with a parsable emotion; conflict acc.: accuracy on the in-distribution clips "
             "whose face masks the felt emotion; cue P / R: precision and recall of the cues the reasoning claims "
             "against the clip's recorded cues, a cue said of the other modality counting as false "
             "(docs/synthetic_world.md); wrong modality: the share of claims that say a face cue of the voice or "
             "a voice cue of the face; reasoning ≠ answer: answers whose reasoning names emotions but not the one "
             "answered. Columns from format to conflict acc. and the last are in distribution.", "",
             markdown_table(TABLE_HEADER, table_rows(results, stages)), ""]
    lines += ["## What the comparison shows", ""] + [f"- {v}" for v in verdicts(results, result.differences)] + [""]
    lines += ["| difference | ID UAR | ID WAR | OOD UAR | OOD WAR |", "|---|---|---|---|---|"]
    for name, change in result.differences.items():
        cells = [_with_interval(change[k][m]["difference"], change[k][m]["interval"])
                 for k in ("id", "ood") for m in ("uar", "war")]
        lines.append(f"| {name.replace('-', ' − ')} | " + " | ".join(cells) + " |")
    lines.append("")
    for name, stage_curves in curves.items():
        quarters = {k: ", ".join(f"{v:.3f}" for v in quarter_means(values)) for k, values in stage_curves.items()
                    if k != "step"}
        faith = (f" faithfulness reward {quarters['reward_faithfulness']};"
                 if not all(v != v for v in stage_curves["reward_faithfulness"]) else "")
        lines += [f"## {name}", "", f"{len(stage_curves['step'])} steps of {plan['grpo_prompts']} prompts x "
                  f"{plan['num_generations']} completions. By quarter of the run: accuracy reward "
                  f"{quarters['accuracy']}; format reward {quarters['format']};{faith} KL {quarters['kl']}; "
                  f"completion tokens {quarters['completion_length']}; groups whose rewards were all equal (no "
                  f"learning signal) {quarters['frac_reward_zero_std']}.", "", f"![{name} curves]({name}_curves.png)",
                  ""]
    lines += ["## Stages", "", "| stage | what | training split | steps | train s | eval s |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {s.name} | {s.title}" + (f", from {s.start}" if s.start else "") + f" | {s.split or '–'} | "
              f"{plan['steps'].get(s.name, 0)} | {results[s.name]['train_seconds']:.0f} | "
              f"{results[s.name]['eval_seconds']:.0f} |" for s in stages]
    lines += ["", f"World synthesis {seconds['world']:.0f} s, feature cache {seconds['features']:.0f} s; total wall "
              f"time {seconds['total'] / 60:.1f} min; peak memory {result.peak_memory_mb / 1024:.2f} GB.", ""]
    lines += ["## Sample reasoning (first test clips)", ""]
    for sample in sample_reasoning(result.out, stages):
        lines += [f"**{sample['id']}** (label: {sample['label']})", ""]
        lines += [f"- {stage}: `{_shorten(text)}`" for stage, text in sample["completions"].items()]
        lines.append("")
    lines += ["Each stage's predictions, confusion matrices and per-class recall are in `eval/<stage>/id/` and "
              "`eval/<stage>/ood/`; training metrics in `<stage>/metrics.jsonl`.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- several seeds


def _spread(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "min": float(np.min(values)), "max": float(np.max(values)), "values": values}


def write_seed_summary(out: Path, runs: dict, stages) -> dict:
    """Mean, standard deviation and range over seeds of every stage's UAR/WAR and of the GRPO
    differences; `out/seeds.json` and `out/seeds.md`."""
    seeds = list(runs)
    summary = {"seeds": seeds, "stages": {}, "differences": {},
               "minutes": [round(r.seconds["total"] / 60, 1) for r in runs.values()]}
    for stage in stages:
        summary["stages"][stage.name] = {f"{key}_{metric}": _spread([r.results[stage.name][key][metric]
                                                                      for r in runs.values()])
                                         for key in ("id", "ood") for metric in ("uar", "war")}
        for key in ("id", "ood"):  # the reasoning's claims, for the stages that reason
            for metric in ("cue_precision", "cue_recall", "wrong_modality_rate"):
                values = [r.results[stage.name][key].get(metric) for r in runs.values()]
                if all(v is not None for v in values):
                    summary["stages"][stage.name][f"{key}_{metric}"] = _spread(values)
    first = next(iter(runs.values()))
    for name in first.differences:
        summary["differences"][name] = {f"{key}_{metric}": _spread([r.differences[name][key][metric]["difference"]
                                                                     for r in runs.values()])
                                        for key in ("id", "ood") for metric in ("uar", "war")}
    (out / "seeds.json").write_text(json.dumps(summary, indent=2) + "\n")

    def cell(s: dict) -> str:
        return f"{100 * s['mean']:.1f} ± {100 * s['sd']:.1f}"

    keys = ("id_uar", "id_war", "ood_uar", "ood_war")
    lines = [f"# r1omni demo over seeds {', '.join(map(str, seeds))}", "",
             f"Mean ± standard deviation over {len(seeds)} runs (each its own world and training); wall time "
             f"{', '.join(map(str, summary['minutes']))} min.", "",
             markdown_table(["stage", "ID UAR", "ID WAR", "OOD UAR", "OOD WAR"],
                            [[s.name] + [cell(summary["stages"][s.name][k]) for k in keys] for s in stages]), "",
             markdown_table(["difference", "ID UAR", "ID WAR", "OOD UAR", "OOD WAR"],
                            [[n.replace("-", " − ")] + [cell(d[k]) for k in keys]
                             for n, d in summary["differences"].items()]), ""]
    claims = ("id_cue_precision", "id_cue_recall", "ood_cue_precision", "ood_cue_recall", "id_wrong_modality_rate",
              "ood_wrong_modality_rate")
    reasoning = [s.name for s in stages if claims[0] in summary["stages"][s.name]]
    if reasoning:
        lines += ["The reasoning's claims against the recorded cues:", "",
                  markdown_table(["stage", "ID cue precision", "ID cue recall", "OOD cue precision", "OOD cue recall",
                                  "ID wrong modality", "OOD wrong modality"],
                                 [[name] + [cell(summary["stages"][name][k]) for k in claims] for name in reasoning]),
                  ""]
    (out / "seeds.md").write_text("\n".join(lines))
    return summary
