"""The ``r1omni`` command: parses arguments and calls the library; holds no logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from r1omni import __version__
from r1omni.errors import ConfigError, R1OmniError
from r1omni.serve.limits import ServeLimits


def _data_prepare(args: argparse.Namespace) -> None:
    from r1omni.data import scan_dataset, write_manifest
    from r1omni.data.summary import print_summary

    result = scan_dataset(
        args.dataset, args.root, csv=args.csv, path_column=args.path_column,
        label_column=args.label_column, name=args.name,
    )
    out = write_manifest(result.rows, args.out)
    print_summary(result, out)


def _data_split(args: argparse.Namespace) -> None:
    from r1omni.data import read_manifest, write_manifest
    from r1omni.data.split import split_by_speaker

    speakers = [s.strip() for s in args.test_speakers.split(",") if s.strip()]
    names = [n.strip() for n in args.names.split(",")]
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise ConfigError(f"--names takes two different names, the kept side's and the held-out side's, "
                          f"got {args.names!r}")
    train, test = split_by_speaker(read_manifest(args.manifest), speakers)
    for name, rows in zip(names, (train, test)):
        path = write_manifest(rows, args.out / f"{name}.jsonl")
        print(f"{name:<5} {len(rows):>5} clips, {len({r.speaker for r in rows})} speakers  {path}")


def _data_mix(args: argparse.Namespace) -> None:
    from collections import Counter

    from r1omni.data import read_manifest, write_manifest
    from r1omni.data.mix import mix_manifests

    rows = mix_manifests([read_manifest(path) for path in args.manifest], args.split, args.per_class, args.seed,
                         args.fill_rationale, args.labels)
    path = write_manifest(rows, args.out)
    for (dataset, label), count in sorted(Counter((r.dataset, r.label) for r in rows).items()):
        print(f"{dataset:<10} {label:<10} {count:>6}")
    print(f"wrote {len(rows)} rows to {path}")


def _data_augment(args: argparse.Namespace) -> int:
    from r1omni.atomic import writing_folder
    from r1omni.data import read_manifest, write_manifest
    from r1omni.data.augment import augment_rows, parse_kinds
    from r1omni.progress import progress_bar

    kinds = parse_kinds(args.kinds)
    folder = args.audio_out or args.out.with_name(f"{args.out.stem}-audio")
    for path in (args.out, folder):
        if path.exists():
            raise R1OmniError(f"{path}: exists; augmenting writes new files only (remove it or choose another --out)")
    rows = read_manifest(args.manifest)
    with progress_bar(transient=True) as bar, writing_folder(folder) as aside:
        task = bar.add_task(f"augmenting ({', '.join(kinds)})", total=len(rows))
        result = augment_rows(rows, kinds, args.copies, aside, args.seed, named_in=folder.resolve(),
                              progress=lambda done: bar.update(task, completed=done))
    write_manifest(result.rows, args.out)
    print(f"wrote {len(result.rows)} rows ({len(result.rows) - len(rows)} copies) to {args.out}, audio in {folder}")
    if result.failures:
        _print_failures(f"{len(result.failures)} of {len(rows)} rows have no copies, their sound could not be read:",
                        result.failures.values(), "the rows without copies")
        return 1
    return 0


def _data_describe_voice(args: argparse.Namespace) -> int:
    from r1omni.data import read_manifest, write_manifest
    from r1omni.data.acoustics import bounds_of_rows, explain_rows, measure_rows
    from r1omni.progress import progress_bar

    rows = read_manifest(args.manifest)
    bounds = None
    if args.bounds_from:
        bounds = bounds_of_rows(read_manifest(args.bounds_from), str(args.bounds_from))
        if bounds is None:
            raise ConfigError(f"--bounds-from {args.bounds_from}: its rows carry no measured levels "
                              "(write it with r1omni data describe-voice)")
    with progress_bar(transient=True) as bar:
        task = bar.add_task("measuring (eGeMAPS)", total=len(rows))
        measured = measure_rows(rows, lambda done: bar.update(task, completed=done))
    explained = explain_rows(measured, bounds)
    write_manifest(explained, args.out)
    print(f"wrote {len(explained)} rows with acoustic rationales to {args.out}, e.g.:\n  {explained[0].rationale}")
    if measured.failures:
        _print_failures(f"{len(measured.failures)} of {len(rows)} rows left out, their sound could not be read:",
                        measured.failures.values(), "the rows missing from the output")
        return 1
    return 0


def _print_failures(header: str, errors, where: str, shown: int = 20) -> None:
    """A header, the first `shown` errors, and how many more there are (and `where` they are)."""
    errors = list(errors)
    print(header, file=sys.stderr)
    for error in errors[:shown]:
        print(f"  {error}", file=sys.stderr)
    if len(errors) > shown:
        print(f"  … and {len(errors) - shown} more ({where})", file=sys.stderr)


def _parse_sizes(items: list[str]) -> dict[str, int]:
    sizes = {}
    for item in items:
        split, _, count = item.partition("=")
        if not count.isdigit():
            raise R1OmniError(f"--sizes takes SPLIT=COUNT items (e.g. rl=500), got {item!r}")
        sizes[split] = int(count)
    return sizes


def _data_synth(args: argparse.Namespace) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from r1omni.data.synth import SPLITS, WorldConfig, write_world
    from r1omni.progress import progress_bar

    check_out_folder(args.out)
    config = WorldConfig(seed=args.seed, conflict_fraction=args.conflict_fraction)
    config.sizes.update(_parse_sizes(args.sizes))
    config.validate()
    splits = [s for s in SPLITS if config.sizes.get(s, 0) > 0]
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with progress_bar(*columns) as bar:
        tasks = {s: bar.add_task(s, total=config.sizes[s]) for s in splits}
        manifests = write_world(config, args.out, splits, ablations=args.ablations, workers=args.workers,
                                progress=lambda split, done, total: bar.update(tasks[split], completed=done))
    for split, path in manifests.items():
        print(f"{split:<10} {config.sizes[split]:>6} clips  {path}")
    print(f"world parameters: {Path(args.out) / 'world.json'}")


def _cache_build(args: argparse.Namespace) -> None:
    from r1omni.data import read_manifest
    from r1omni.models import load_policy
    from r1omni.models.cache import FeatureCache, default_cache_dir, fill_cache
    from r1omni.progress import progress_bar

    rows = read_manifest(args.manifest)
    policy = load_policy(args.model, **model_options(args)).eval()
    frozen = list(policy.frozen_encoders())
    if not frozen:
        print(f"{args.model}: no frozen encoder, so nothing to cache (trainable encoders run every step)")
        return
    cache = FeatureCache(args.cache or default_cache_dir())
    with progress_bar() as bar:
        task = bar.add_task(f"caching {', '.join(frozen)} features", total=len(rows))
        failures = fill_cache(policy, rows, cache, progress=lambda done, total: bar.update(task, completed=done))
    print(f"{len(rows)} clips: {cache.misses} features computed, {cache.hits} already cached, "
          f"{len(failures)} failed; cache at {cache.directory}")
    for clip_id, error in failures:
        print(f"  failed {clip_id}: {error}")


def _model_init(args: argparse.Namespace) -> None:
    from r1omni.models import PRESETS, build_preset

    check_out_folder(args.out)
    corpus = None
    if PRESETS[args.preset].trains_tokenizer:
        from r1omni.data.synth.corpus import world_texts

        corpus = world_texts()
    policy = build_preset(args.preset, corpus, vocab_size=args.vocab_size, lm=args.lm, vision=args.vision,
                          audio=args.audio, thinker=args.thinker, audio_layers=args.audio_layers,
                          audio_frames=False if args.audio_utterance_only else None)
    policy.save_pretrained(args.out)
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    total = sum(p.numel() for p in policy.parameters())
    print(f"{args.preset}: {total / 1e6:.1f} M parameters ({trainable / 1e6:.1f} M trainable) saved to {args.out}")


def _model_export(args: argparse.Namespace) -> None:
    from r1omni.models import export_released, load_policy

    check_out_folder(args.out)
    policy = load_policy(args.model, device="cpu", dtype=args.dtype, **model_options(args))
    try:
        export_released(policy, args.out)
    except R1OmniError as err:
        raise R1OmniError(f"{args.model}: {err}") from None
    print(f"wrote {args.out} in the released HumanOmni/R1-Omni layout ({args.dtype}); its bert_tokenizer/ folder "
          "holds the gate's tokenizer")


def _train(args: argparse.Namespace) -> None:
    from r1omni.train.config import load_config

    config = load_config(args.config, args.overrides, kind=args.command)
    from r1omni.train.dist import leave_distributed, process_info
    from r1omni.train.stages import train

    final = train(config, resume=args.resume)
    rank, processes = process_info()
    leave_distributed()
    if rank == 0:
        print(f"model saved to {final}; metrics in {Path(config.train.output_dir) / 'metrics.jsonl'}")
    if processes > 1:
        # Gloo's worker threads can still hold tensors after the group is destroyed, and Python's
        # finalisation then aborts the process ("terminate called without an active exception",
        # about one two-process run in ten here) after the model was saved and every file closed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _pretrain(args: argparse.Namespace) -> None:
    from r1omni.pretrain import PretrainSettings, pretrain
    from r1omni.pretrain.perception import PerceptionSettings

    check_out_folder(args.out)
    settings = PretrainSettings()
    if args.quick:
        settings = PretrainSettings(clips=48, probe_clips=16, caption_steps=4, batch_size=8,
                                    perception=PerceptionSettings(steps=4, clips_per_step=8))
    console = Console()
    base = pretrain(args.out, settings, workers=args.workers, say=lambda text: console.print(text))
    console.print(f"to ship it: copy {base} to r1omni/assets/nano_base (the nano-base preset)")


def _pretrain_face(args: argparse.Namespace) -> None:
    from r1omni.data import read_manifest
    from r1omni.labels import vocabulary
    from r1omni.models.towers import save_tower
    from r1omni.pretrain.face_tower import face_arrays, train_face_tower
    from r1omni.progress import progress_bar

    check_out_folder(args.out)
    if args.out.exists() and any(args.out.iterdir()):
        raise R1OmniError(f"--out {args.out}: is not empty; a tower is written to a new folder only "
                          "(remove it or choose another --out)")
    classes = vocabulary(args.labels)
    sides = {"training": read_manifest(args.train), "validation": read_manifest(args.val)}
    faces = {}
    with progress_bar(transient=True) as bar:
        for side, rows in sides.items():
            task = bar.add_task(f"reading {side} faces", total=len(rows))
            faces[side] = face_arrays(rows, lambda done, task=task: bar.update(task, completed=done))
    console = Console()
    tower, record = train_face_tower(faces["training"], [r.label for r in sides["training"]], faces["validation"],
                                     [r.label for r in sides["validation"]], classes, args.epochs, args.seed,
                                     args.width, args.equalize, say=console.print)
    record["train_manifest"], record["val_manifest"] = str(args.train), str(args.val)
    save_tower(tower, args.out, record)
    console.print(f"best validation UAR {record['best_val_uar']:.1%}; tower saved to {args.out} "
                  f"(r1omni model init --preset smol-omni --vision {args.out})")


def _predict(args: argparse.Namespace) -> int:
    from r1omni.predict import Prediction, PredictionWriter, load_model, media_paths
    from r1omni.progress import progress_bar
    from r1omni.prompts import MODAL_SETTINGS

    paths = media_paths(args.paths)
    if not paths:
        raise R1OmniError("no media files found in the given paths")
    if args.resume and not args.out:
        raise R1OmniError("--resume continues the --out file of an interrupted run: give --out")
    writer = PredictionWriter(args.out, resume=args.resume) if args.out else None  # a bad --out fails before loading
    model = load_model(args.model, prompt=args.prompt, labels=args.labels, max_new_tokens=args.max_new_tokens,
                       device=args.device, dtype=args.dtype, **model_options(args))
    if args.check_claims and model.voice_levels is None:
        raise R1OmniError(f"--check-claims: {args.model} was not trained on measured rationales (r1omni data "
                          "describe-voice), so its reasoning has no measured vocabulary to check")
    if args.standardize == "clips":
        fitted = model.standardize_on_paths(paths, MODAL_SETTINGS[args.modal] if args.modal else None)
        print(f"standardising {', '.join(fitted)} features by the statistics of the {len(paths)} clips given "
              f"({', '.join(f'{n} read for {m}' for m, n in fitted.items())})")
    done = writer.resumed_batches([str(p) for p in paths], args.batch_size) if writer else []
    if writer is not None:
        writer.start(done)
    failed = [Prediction(**row) for row in done if row.get("error")]
    with progress_bar(transient=True) as bar:
        task = bar.add_task("predicting", total=len(paths), completed=len(done))
        for start in range(len(done), len(paths), args.batch_size):
            shown = MODAL_SETTINGS[args.modal] if args.modal else None  # None: the model's own
            for r in model.predict_paths(paths[start : start + args.batch_size], shown, args.batch_size,
                                         probabilities=args.probabilities, check_claims=args.check_claims):
                if writer is not None:
                    writer.write(r)
                bar.console.print(_shown(r), highlight=False, markup=False)
                failed += [r] if r.error else []
            bar.update(task, completed=min(start + args.batch_size, len(paths)))
    if writer is not None:
        writer.publish()
        resumed = f" ({len(done)} kept from the interrupted run)" if done else ""
        print(f"wrote {len(paths)} predictions to {args.out}{resumed}")
    if failed:
        print(f"{len(failed)} of {len(paths)} files could not be read:", file=sys.stderr)
        for r in failed:
            print(f"  {r.error}", file=sys.stderr)
        if len(failed) == len(paths):
            raise R1OmniError(f"none of the {len(paths)} files could be read")
        return 1
    return 0


def _shown(r) -> str:
    """One prediction as the console shows it."""
    if r.error:
        return f"{r.id}: ERROR {r.error}"
    if r.answer:
        shown = r.answer
    elif r.raw_answer is not None:
        shown = f"{r.raw_answer!r} (out of vocabulary)"
    else:
        shown = "(no answer)"
    lines = [f"{r.id}: {shown}", f"  reasoning: {r.reasoning or '(none)'}"]
    lines += [f"  {modality} features standardised by: {whose}" for modality, whose in (r.statistics or {}).items()]
    for claim in r.claims or ():
        mark = {True: "holds", False: "does not hold", None: "not judged"}[claim["holds"]]
        measured = f" (measured: {claim['measured']}, {claim['value']:.2f})" if "measured" in claim else ""
        lines.append(f"  claim {claim['text']!r}: {mark}{measured}")
    return "\n".join(lines)


def _eval(args: argparse.Namespace) -> int:
    from r1omni.eval.predictions import score_predictions_file
    from r1omni.eval.reports import scores_table

    console = Console()
    if args.predictions:
        if args.manifest or args.model:
            raise R1OmniError("give either --predictions, or --manifest with --model")
        check_out_folder(args.out)
        scores = score_predictions_file(args.predictions, args.out)
        console.print(scores_table(scores, title=f"evaluation of {args.predictions}"))
        if args.out:
            console.print(f"wrote {Path(args.out) / 'metrics.json'} and {Path(args.out) / 'confusion_matrix.png'}")
        return
    if not (args.manifest and args.model):
        raise R1OmniError("eval needs --predictions FILE, or --manifest M with --model DIR")
    from r1omni.data import read_manifest
    from r1omni.eval.run import evaluate_model, model_setting
    from r1omni.predict import load_model
    from r1omni.progress import progress_bar

    rows = read_manifest(args.manifest)
    check_out_folder(args.out)
    if args.resume and not args.out:
        raise R1OmniError("--resume continues the --out folder of an interrupted evaluation: give --out")
    model = load_model(args.model, prompt=args.prompt, labels=args.labels, max_new_tokens=args.max_new_tokens,
                       device=args.device, dtype=args.dtype, **model_options(args))
    if args.measure:
        rows = _measured(rows, model.voice_levels)
    settings = ("video_audio", "video", "audio") if args.ablate else (args.modal or model_setting(model),)
    with progress_bar(transient=True) as bar:
        tasks = {s: bar.add_task(f"eval {s}", total=len(rows)) for s in settings}
        results = evaluate_model(model, rows, args.out, settings, args.batch_size, standardize=args.standardize,
                                 progress=lambda setting, done, total: bar.update(tasks[setting], completed=done,
                                                                                  total=total),
                                 resume=args.resume)
    for setting, scores in results.items():
        console.print(scores_table(scores, title=f"{args.manifest} ({setting})"))
    dropped = next(iter(results.values())).dropped_labels
    if dropped:
        print(f"dropped {sum(dropped.values())} rows labelled with classes the model was not trained on: "
              + ", ".join(f"{label} ({count})" for label, count in dropped.items()))
    if args.out:
        console.print(f"wrote metrics.json, predictions, report.md and plots to {args.out}")
    left_out = {setting: scores.left_out for setting, scores in results.items() if scores.left_out}
    for setting, failures in left_out.items():
        _print_failures(f"{setting}: {len(failures)} of {len(rows)} rows left out, their media could not be read:",
                        failures.values(), "see the predictions file")
    return 1 if left_out else 0


def _measured(rows, bounds):
    """`rows` with their sound measured (eGeMAPS) into voice levels against `bounds` (the model's
    terciles), else against the rows' own terciles, said so."""
    from r1omni.data.acoustics import with_measured_levels
    from r1omni.progress import progress_bar

    if bounds is None:
        print("the model records no voice-level terciles; measuring levels against this manifest's own terciles")
    with progress_bar(transient=True) as bar:
        task = bar.add_task("measuring (eGeMAPS)", total=len(rows))
        rows, failures = with_measured_levels(rows, bounds, lambda done: bar.update(task, completed=done))
    if failures:
        _print_failures(f"{len(failures)} of {len(rows)} rows could not be measured (no faithfulness for them):",
                        failures.values(), "their rows")
    return rows


def _demo(args: argparse.Namespace) -> None:
    from rich.table import Table

    from r1omni.demo import STAGES, run_demo, run_seeds
    from r1omni.demo.report import CONSOLE_HEADER, table_rows, verdicts

    console = Console()

    def say(text: str) -> None:
        console.print(f"[bold]{text}[/bold]")

    if args.seeds:
        seeds = _parse_seeds(args.seeds)
        summary = run_seeds(args.out, seeds, quick=args.quick, workers=args.workers, say=say)
        console.print((args.out / "seeds.md").read_text())
        console.print(f"wall time per seed: {', '.join(map(str, summary['minutes']))} min")
        return
    result = run_demo(args.out, quick=args.quick, seed=args.seed, workers=args.workers, say=say)
    table = Table(title=f"r1omni demo{' --quick' if args.quick else ''} (percent, 95% intervals; more in the report)")
    for column in CONSOLE_HEADER:
        table.add_column(column, justify="left" if column == "stage" else "right", no_wrap=True)
    for row in table_rows(result.results, STAGES):
        table.add_row(row[0], *row[2:7])
    console.print(table)
    for line in verdicts(result.results, result.differences):
        console.print(f"- {line}")
    minutes, gigabytes = result.seconds["total"] / 60, result.peak_memory_mb / 1024
    console.print(f"wall time {minutes:.1f} min, peak memory {gigabytes:.2f} GB; report: {args.out / 'report.md'}")


def _serve(args: argparse.Namespace) -> None:
    import shutil
    import signal
    import tempfile

    from r1omni.serve.access import check_exposure, model_label, read_logins
    from r1omni.serve.files import ServerFiles

    logins = read_logins(args.auth) if args.auth else None
    check_exposure(args.host, logins is not None, args.no_auth)
    server = ServerFiles(args.data_root)
    # Uploads go under this server's own folder, so that they are deleted with it.
    work_dir = Path(tempfile.mkdtemp(prefix="r1omni-serve-"))
    os.environ["GRADIO_TEMP_DIR"] = str(work_dir / "uploads")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise R1OmniError("r1omni serve needs Gradio: pip install 'r1omni[serve]'") from None
    from r1omni.demo import model_dir
    from r1omni.predict import load_model
    from r1omni.serve.app import build_app, launch

    # The demo's model whose reasoning was trained to be true, else the paper's GRPO model.
    demo_models = (model_dir(stage, Path("runs/demo")) for stage in ("grpo_faithful", "grpo"))
    demo_model = next((m for m in demo_models if m.is_dir()), None)
    path = args.model or demo_model
    limits = ServeLimits(max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds,
                         max_batch_files=args.max_batch_files, concurrency=args.concurrency,
                         queue_size=args.queue_size, timeout_s=args.timeout, max_manifest_kb=args.max_manifest_kb,
                         keep_uploads_min=args.keep_uploads_min)
    limits.validate()
    predictor = load_model(path, max_new_tokens=args.max_new_tokens, device=args.device, dtype=args.dtype,
                           **model_options(args)) if path else None
    where = f"http://{args.host}:{args.port}"
    print(f"serving {path or '(no model: the page says how to get one)'} on {where} (Ctrl+C stops)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop by `kill` cleans up as Ctrl+C does
    try:
        launch(build_app(predictor, model_label(path) if path else "", limits, work_dir, server), args.host,
               args.port, limits, auth=logins)
    except OSError as err:  # the port is taken, or the address is not this machine's
        raise R1OmniError(f"cannot serve on {args.host}:{args.port}: {err}; choose another --port") from None
    finally:  # visitors' uploads and outputs do not outlive the server
        shutil.rmtree(work_dir, ignore_errors=True)


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise R1OmniError(f"--seeds takes whole numbers separated by commas (e.g. 0,1,2), got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise R1OmniError(f"--seeds needs distinct seeds, got {text!r}")
    return seeds


def _device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda or cuda:N (default: CUDA when present)")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                        help="weights and activations (default: bfloat16 on a GPU that supports it, else float32)")


def _loads_a_model(parser: argparse.ArgumentParser) -> None:
    """Mark a command that loads a model: the options backends take to read their released folders
    (r1omni.models.loading_options: --bert-tokenizer …) are added to it by `parse_command_line`,
    which imports the models only for such a command, so that the other commands start at once."""
    parser.set_defaults(loads_model=True)


def _named_command(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The (sub)command's parser that `argv` names, word by word (``cache build`` …)."""
    for word in argv:
        commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not commands:
            break
        parser = commands[0].choices.get(word, parser)
    return parser


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    from r1omni.models import loading_options

    for option in loading_options():
        if option.switch:
            parser.add_argument(option.flag, action="store_true", help=option.help)
        else:
            parser.add_argument(option.flag, type=Path, help=option.help)


def model_options(args: argparse.Namespace) -> dict:
    """The backends' model loading options as given on the command line (`_loads_a_model`)."""
    from r1omni.models import loading_options

    return {option.name: getattr(args, option.name) for option in loading_options()}


def build_parser() -> argparse.ArgumentParser:
    from r1omni.prompts import MODAL_SETTINGS

    parser = argparse.ArgumentParser(
        prog="r1omni",
        description="Explainable emotion recognition from video and audio (R1-Omni recipe).",
    )
    parser.add_argument("--version", action="version", version=f"r1omni {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="dataset manifests")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    prepare = data_commands.add_parser(
        "prepare", help="read a dataset as distributed and write its manifest (JSONL)",
        description="Adapters: ravdess, cremad, emodb, dfew, mafw, mer2023, folder (ROOT/<label>/…), "
                    "csv (a table with path and label columns).",
    )
    prepare.add_argument("--dataset", required=True, help="adapter name, e.g. ravdess")
    prepare.add_argument("--root", required=True, type=Path, help="the dataset's folder")
    prepare.add_argument("--out", required=True, type=Path, help="manifest to write (.jsonl)")
    prepare.add_argument("--csv", type=Path, help="csv adapter: the label table (default ROOT/labels.csv)")
    prepare.add_argument("--path-column", help="csv adapter: column of relative paths (default path)")
    prepare.add_argument("--label-column", help="csv adapter: column of labels (default label)")
    prepare.add_argument("--name", help="folder/csv adapters: dataset name written in the rows")
    prepare.set_defaults(run=_data_prepare)

    split = data_commands.add_parser(
        "split", help="speaker-independent train/test split of a manifest",
        description="Every clip of the held-out speakers goes to OUT/test.jsonl, the rest to OUT/train.jsonl "
                    "(other names with --names).",
    )
    split.add_argument("--manifest", required=True, type=Path, help="manifest whose rows name their speaker")
    split.add_argument("--test-speakers", required=True, help="speakers to hold out, comma-separated (e.g. 15,16)")
    split.add_argument("--out", required=True, type=Path, help="folder for train.jsonl and test.jsonl")
    split.add_argument("--names", default="train,test",
                       help="the two manifests' names, kept side first (e.g. coldstart,rl to split training speakers "
                            "between a cold start and GRPO)")
    split.set_defaults(run=_data_split)

    mix = data_commands.add_parser(
        "mix", help="rows of several manifests in one (a split, classes capped per corpus)",
        description="For one model trained on several corpora at once, e.g. FER-2013 faces and Emo-DB speech.")
    mix.add_argument("--manifest", required=True, type=Path, action="append",
                     help="a manifest to take rows from (give it several times)")
    mix.add_argument("--split", help="keep only rows of this split (e.g. train)")
    mix.add_argument("--per-class", type=int, help="at most this many rows of each label of each corpus")
    mix.add_argument("--seed", type=int, default=0, help="which rows --per-class keeps")
    mix.add_argument("--labels", metavar="VOCABULARY",
                     help="keep only rows with a label of this vocabulary, e.g. 'emodb&ravdess' (the classes both "
                          "share) for a model scored across corpora")
    mix.add_argument("--fill-rationale", metavar="TEXT",
                     help="reasoning for rows without one (say what is given; invent no cue)")
    mix.add_argument("--out", required=True, type=Path, help="manifest to write (.jsonl)")
    mix.set_defaults(run=_data_mix)

    augment = data_commands.add_parser(
        "augment", help="augmented copies of a manifest's speech (room, band, noise, telephone, loudness)",
        description="Writes every row of the manifest, each followed by --copies copies of its sound, each copy of "
                    "a kind drawn at random from --kinds (channel: a room, a band and background noise; codec: a "
                    "telephone, 8 kHz mu-law; loudness: -20 to +10 dB; speed: 0.85-1.15, pitch and tempo together), "
                    "as FLAC files in a new folder. A copy keeps its clip's label, corpus and speaker; it carries no "
                    "rationale (run describe-voice on the output to measure the copies' own sound).")
    augment.add_argument("--manifest", required=True, type=Path, help="manifest of clips with sound")
    augment.add_argument("--kinds", default="channel,codec,loudness",
                         help="comma-separated kinds to draw from (default channel,codec,loudness: what helped "
                              "on the cross-corpus development speakers)")
    augment.add_argument("--copies", type=int, default=1, help="copies of each clip (default 1)")
    augment.add_argument("--seed", type=int, default=0, help="same seed and row id, same copy")
    augment.add_argument("--out", required=True, type=Path, help="manifest to write (.jsonl); must not exist")
    augment.add_argument("--audio-out", type=Path,
                         help="folder for the copies, must not exist (default: OUT's name with -audio)")
    augment.set_defaults(run=_data_augment)

    describe = data_commands.add_parser(
        "describe-voice", help="rationales from measured acoustics (pitch, loudness, tempo) for a cold start",
        description="Measures every clip's sound with openSMILE's eGeMAPS (pip install 'r1omni[speech]') and "
                    "writes the rows again with a rationale (and caption) saying whether its pitch, pitch "
                    "variation, loudness and tempo fall in the lower, middle or upper third of the manifest's "
                    "clips (or of another corpus's, --bounds-from); the values, levels and terciles go to "
                    "meta.acoustics. No emotion is named in the text.",
    )
    describe.add_argument("--manifest", required=True, type=Path, help="manifest of clips with sound")
    describe.add_argument("--bounds-from", type=Path,
                          help="a manifest written by describe-voice: take its terciles (e.g. the training clips' "
                               "for a test set) instead of this manifest's own")
    describe.add_argument("--out", required=True, type=Path, help="manifest to write (.jsonl)")
    describe.set_defaults(run=_data_describe_voice)

    synth = data_commands.add_parser(
        "synth", help="write the synthetic audio-visual emotion world (mp4 clips + manifests)",
        description="Writes DIR/clips/<split>/*.mp4 (H.264 + AAC), DIR/<split>.jsonl and DIR/world.json. "
                    "Splits: pretrain, coldstart, rl, val, test, ood_test.",
    )
    synth.add_argument("--out", required=True, type=Path, help="output folder")
    synth.add_argument("--seed", type=int, default=0, help="world seed (default 0): same seed, same files")
    synth.add_argument("--sizes", nargs="*", default=[], metavar="SPLIT=N",
                       help="clips per split, e.g. rl=500 test=200 (0 skips a split; defaults: pretrain=2000 "
                            "coldstart=580 rl=4000 val=200 test=700 ood_test=700)")
    synth.add_argument("--conflict-fraction", type=float, default=0.15,
                       help="share of clips whose face masks the felt emotion (default 0.15)")
    synth.add_argument("--ablations", action="store_true",
                       help="also write <split>.video_only.jsonl and <split>.audio_only.jsonl")
    synth.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    synth.set_defaults(run=_data_synth)

    cache = commands.add_parser("cache", help="feature cache of frozen towers")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="SUBCOMMAND")
    build = cache_commands.add_parser(
        "build", help="run a model's frozen towers over a manifest once and store their outputs",
        description="Entries are keyed by file content, tower identity and preprocessing, so they stay "
                    "valid across runs and are shared by every model with the same towers.",
    )
    build.add_argument("--manifest", required=True, type=Path, help="manifest JSONL")
    build.add_argument("--model", required=True, type=Path, help="a saved r1omni model or released HumanOmni folder")
    build.add_argument("--cache", type=Path, help="cache folder (default $R1OMNI_CACHE or ~/.cache/r1omni/features)")
    _loads_a_model(build)
    build.set_defaults(run=_cache_build)

    model = commands.add_parser("model", help="build and save a model to train")
    model_commands = model.add_subparsers(dest="model_command", required=True, metavar="SUBCOMMAND")
    init = model_commands.add_parser("init", help="build a preset and save it (nano needs nothing downloaded)")
    init.add_argument("--preset", required=True,
                      help="nano (nothing downloaded), r1omni-0.5b or qwen2.5-omni (r1omni.models.PRESETS)")
    init.add_argument("--out", required=True, type=Path, help="folder to save the model in")
    init.add_argument("--vocab-size", type=int, help="nano: tokenizer size (default 4096)")
    init.add_argument("--lm", help="r1omni-0.5b: causal LM path or name (default Qwen/Qwen2.5-0.5B-Instruct)")
    init.add_argument("--vision", help="r1omni-0.5b: vision model (default google/siglip-base-patch16-224); "
                      "smol-omni: a face tower folder (r1omni pretrain-face) or pyemotion (default: the shipped one)")
    init.add_argument("--audio", help="r1omni-0.5b: Whisper model (default openai/whisper-large-v3)")
    init.add_argument("--thinker", help="qwen2.5-omni: checkpoint path or name, e.g. Qwen/Qwen2.5-Omni-7B")
    init.add_argument("--audio-layers", type=int, help="smol-omni: keep Whisper's first K encoder layers and read "
                      "the K-th one's output (default: all 4; 2 carries emotion across corpora best, "
                      "docs/real_speech.md)")
    init.add_argument("--audio-utterance-only", action="store_true",
                      help="smol-omni: the LM reads one audio token, the mean of the clip's Whisper frames, "
                           "instead of the pooled frames and that token")
    init.set_defaults(run=_model_init)
    export = model_commands.add_parser(
        "export", help="write a humanomni model in the released HumanOmni/R1-Omni layout",
        description="config.json (model_type HumanOmni_qwen2), one model.safetensors with the official key names, "
                    "the tokenizer, and bert_tokenizer/ (the gate's tokenizer), as the official code reads them.")
    export.add_argument("--model", required=True, type=Path, help="a humanomni model (r1omni's save or released)")
    export.add_argument("--out", required=True, type=Path, help="folder to write")
    export.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16",
                        help="weights' dtype (default bfloat16, as released)")
    _loads_a_model(export)
    export.set_defaults(run=_model_export)

    for name, text in (("sft", "supervised fine-tuning: cold start (reasoning), label SFT or captions"),
                       ("grpo", "GRPO with verifiable rewards (accuracy + format)")):
        train = commands.add_parser(name, help=text, description=f"{text}. Values come from the defaults, the "
                                    "grpo.preset, the YAML file, then SECTION.KEY=VALUE overrides. Runs under "
                                    "accelerate launch / torchrun unchanged.")
        train.add_argument("--config", type=Path, help="YAML config (see configs/)")
        train.add_argument("--resume", type=Path, help="a checkpoint folder to continue from exactly")
        train.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE", help="e.g. train.lr=2e-6")
        train.set_defaults(run=_train)

    pretrain = commands.add_parser(
        "pretrain", help="build the nano base model (perception, then captions) that the demo starts from",
        description="Writes a synthetic world of its own (seed 1000), trains the nano towers on every clip's "
                    "recorded cues, freezes them, trains the LM on captions, and writes OUT/base in float16 "
                    "with build.json (settings, weights hash, seconds, a probe of what the towers perceive). "
                    "The shipped r1omni/assets/nano_base was built by this command with its defaults.",
    )
    pretrain.add_argument("--out", type=Path, default=Path("runs/pretrain"), help="output folder")
    pretrain.add_argument("--quick", action="store_true", help="a tiny build (a smoke test, not a usable base)")
    pretrain.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes writing the world")
    pretrain.set_defaults(run=_pretrain)

    face = commands.add_parser(
        "pretrain-face", help="train r1omni's own face tower on labelled face images (e.g. FER-2013)",
        description="A face-expression CNN (r1omni.models.towers.FaceNet) trained on the training manifest's "
                    "images, the epoch with the best validation UAR kept; smol-omni takes it with --vision DIR.")
    face.add_argument("--train", required=True, type=Path, help="manifest of training faces")
    face.add_argument("--val", required=True, type=Path, help="manifest of validation faces (chooses the epoch)")
    face.add_argument("--labels", default="fer2013", help="the tower's classes, a vocabulary name (default fer2013)")
    face.add_argument("--epochs", type=int, default=25,
                      help="passes over the training faces (default 25: at 10 the validation UAR was still rising)")
    face.add_argument("--width", type=int, default=48,
                      help="channels of the first stage (default 48: 32 carried 5 points less from FER-2013 to CK+)")
    face.add_argument("--equalize", action=argparse.BooleanOptionalAction, default=True,
                      help="histogram-equalise every face the tower reads, in training and after (default on: "
                           "FER-2013's faces come equalised, posed and video faces do not)")
    face.add_argument("--seed", type=int, default=0)
    face.add_argument("--out", required=True, type=Path, help="folder for the tower")
    face.set_defaults(run=_pretrain_face)

    predict = commands.add_parser("predict", help="emotion and reasoning for video/audio files or folders")
    predict.add_argument("paths", nargs="+", type=Path, help="files or folders of videos, audio files or images")
    predict.add_argument("--model", required=True, type=Path,
                         help="a saved r1omni model folder, or a released HumanOmni/R1-Omni folder")
    _device_options(predict)
    _loads_a_model(predict)
    predict.add_argument("--modal", choices=list(MODAL_SETTINGS),
                         help="which modalities the model sees (R1-Omni's flag; default: those it was trained on)")
    predict.add_argument("--out", type=Path, help="write predictions to FILE.jsonl or FILE.csv")
    predict.add_argument("--prompt",
                       help="the prompt: r1omni, options or mixed (default: the model's training prompt)")
    predict.add_argument("--labels", help="label vocabulary for answers, e.g. dfew (default: the model's training "
                         "labels, else any known emotion)")
    predict.add_argument("--probabilities", action="store_true",
                         help="add each label's probability as the answer, from the model's distribution there")
    predict.add_argument("--check-claims", action="store_true",
                         help="measure each clip's sound (eGeMAPS) and mark every pitch, loudness, variation and "
                              "tempo level the reasoning states as holding or not (models trained on measured "
                              "rationales: r1omni data describe-voice)")
    predict.add_argument("--standardize", choices=("model", "clips"), default="model",
                         help="feature statistics for models that standardise tower features: the model's training "
                              "clips' (model, default) or those of the clips given, together (clips: a folder of "
                              "your own recordings, fitted without labels)")
    predict.add_argument("--batch-size", type=int, default=8)
    predict.add_argument("--resume", action="store_true", help="continue an interrupted run into the same --out "
                         "(its OUT.partial): no row lost, none twice")
    predict.add_argument("--max-new-tokens", type=int, default=256)
    predict.set_defaults(run=_predict)

    evaluate = commands.add_parser(
        "eval", help="score predictions: UAR, WAR, format rate, per-class recall",
        description="Either scores JSONL rows with 'label' and 'prediction' or 'completion' (--predictions), "
                    "or predicts every row of a manifest with a model first (--manifest, --model).",
    )
    evaluate.add_argument("--predictions", type=Path, help="score an existing predictions JSONL")
    evaluate.add_argument("--manifest", type=Path, help="predict every row of this manifest with --model")
    evaluate.add_argument("--model", type=Path, help="a saved r1omni model folder, or a released HumanOmni/R1-Omni "
                          "folder")
    _device_options(evaluate)
    _loads_a_model(evaluate)
    evaluate.add_argument("--modal", choices=list(MODAL_SETTINGS),
                          help="which modalities the model sees (default: those it was trained on)")
    evaluate.add_argument("--ablate", action="store_true", help="video+audio, video only and audio only side by side")
    evaluate.add_argument("--prompt",
                       help="the prompt: r1omni, options or mixed (default: the model's training prompt)")
    evaluate.add_argument("--labels", help="answer vocabulary, e.g. dfew (default: the model's training labels, else "
                          "any known emotion); rows labelled outside it are dropped and counted")
    evaluate.add_argument("--standardize", choices=("model", "corpus", "speaker"), default="model",
                          help="feature statistics for models that standardise tower features: the training "
                               "clips' (model, default), each corpus's own clips in the manifest (corpus) or each "
                               "speaker's own clips (speaker); fitted without labels")
    evaluate.add_argument("--measure", action="store_true",
                          help="measure each clip's sound (eGeMAPS) into voice levels against the model's terciles "
                               "and score the reasoning's stated levels against them (faithfulness)")
    evaluate.add_argument("--batch-size", type=int, default=8)
    evaluate.add_argument("--resume", action="store_true", help="continue an interrupted evaluation into the same "
                          "--out: no row lost, none twice")
    evaluate.add_argument("--max-new-tokens", type=int, default=256)
    evaluate.add_argument("--out", type=Path, help="folder for metrics.json, predictions, report.md and plots")
    evaluate.set_defaults(run=_eval)

    demo = commands.add_parser(
        "demo", help="the R1-Omni comparison on the synthetic world, from the shipped base on a CPU",
        description="Synthesizes the world, then trains the shipped nano base through cold-start SFT, label SFT "
                    "and GRPO, scores every stage on test and ood_test with 95% bootstrap intervals and writes "
                    "results.json, report.md and plots. About 15 minutes on 2 CPU cores; --quick: under 3.",
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    demo.add_argument("--quick", action="store_true", help="every stage at a tiny size (a smoke test)")
    demo.add_argument("--seed", type=int, default=0, help="world and training seed (default 0)")
    demo.add_argument("--seeds", help="several runs, e.g. 0,1,2: each under OUT/seed-S, then the mean and "
                                      "spread per stage in OUT/seeds.md")
    demo.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                      help="processes writing the world (default: all cores)")
    demo.set_defaults(run=_demo)

    serve = commands.add_parser(
        "serve", help="a web page to try a model on your own clips (Gradio, on this machine)",
        description="Upload or record a clip and see the answer, the reasoning, each emotion's probability, the "
                    "frames and the spectrogram; or run a batch of files or a manifest. Bound to localhost unless "
                    "--host says otherwise; no share link, no telemetry.",
    )
    serve.add_argument("--model", type=Path, help="a saved r1omni model or a released HumanOmni/R1-Omni folder "
                       "(default: the demo's final model, runs/demo/grpo_faithful/final, else runs/demo/grpo/final, "
                       "when it exists)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this "
                       "machine only; another address, such as 0.0.0.0, needs --auth or --no-auth)")
    serve.add_argument("--auth", type=Path, metavar="FILE", help="ask for a login: FILE holds one user:password "
                       "a line (a file, so that passwords stay out of the process list and shell history)")
    serve.add_argument("--no-auth", action="store_true", help="listen beyond this machine without a login "
                       "(say so knowingly: anyone who reaches the port can use the model)")
    serve.add_argument("--data-root", type=Path, metavar="DIR", help="let visitors name manifests and media "
                       "inside DIR (default: visitors read only what they upload)")
    limits = ServeLimits()  # the defaults
    serve.add_argument("--keep-uploads-min", type=float, default=limits.keep_uploads_min,
                       help="minutes uploads and batch downloads stay on disk before they are deleted "
                            f"(default {limits.keep_uploads_min:g})")
    serve.add_argument("--max-manifest-kb", type=int, default=limits.max_manifest_kb,
                       help=f"largest manifest read (default {limits.max_manifest_kb})")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("--max-upload-mb", type=int, default=limits.max_upload_mb,
                       help=f"largest file accepted (default {limits.max_upload_mb})")
    serve.add_argument("--max-seconds", type=float, default=limits.max_seconds,
                       help=f"longest clip accepted (default {limits.max_seconds:g})")
    serve.add_argument("--max-batch-files", type=int, default=limits.max_batch_files,
                       help=f"most clips in one batch (default {limits.max_batch_files})")
    serve.add_argument("--concurrency", type=int, default=limits.concurrency,
                       help=f"requests computed at once (default {limits.concurrency})")
    serve.add_argument("--queue-size", type=int, default=limits.queue_size,
                       help=f"requests that may wait; more are refused (default {limits.queue_size})")
    serve.add_argument("--timeout", type=float, default=limits.timeout_s, help="seconds before a request is "
                       f"answered with an error (default {limits.timeout_s:g})")
    serve.add_argument("--max-new-tokens", type=int, default=256)
    _device_options(serve)
    _loads_a_model(serve)
    serve.set_defaults(run=_serve)
    return parser


def check_out_folder(out: Path | None) -> None:
    """An output folder option must not name an existing file."""
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise R1OmniError(f"--out {out}: is a file; give a folder (it is created when missing)")


def parse_command_line(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, the backends' model loading options offered by the commands that load a model."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _named_command(parser, argv)
    if command.get_default("loads_model"):
        _add_model_options(command)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 1 done but some items failed (each reported), 2 nothing done (bad input)."""
    args = parse_command_line(argv)
    try:
        return args.run(args) or 0
    except R1OmniError as err:
        print(f"error: {err}", file=sys.stderr)  # plain: one unwrapped line a user can grep
        return 2


if __name__ == "__main__":
    sys.exit(main())
