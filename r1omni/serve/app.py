"""`r1omni serve`: a Gradio page to try a model on your own clips, on this machine only.

The page wires `analysis.py` to components: a clip tab (upload or record video or audio, or
pick an example; answer, reasoning, label probabilities, frames, spectrogram) and a batch tab
(files or a manifest; table, UAR/WAR with a confusion matrix, JSONL/CSV downloads). Errors reach
the page as messages, never as stack traces (those go to the server's log).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from r1omni.errors import R1OmniError
from r1omni.predict import Predictor
from r1omni.prompts import MODAL_SETTINGS
from r1omni.serve.analysis import (
    FAILS,
    HOLDS,
    Deadline,
    ServeLimits,
    analyse_batch,
    analyse_clip,
    claim_rows,
    claim_segments,
)
from r1omni.serve.examples import example_clips
from r1omni.serve.files import ServerFiles, Sweeper

# No telemetry or version checks leave the machine; set before Gradio is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_TELEMETRY_ENABLED", "False")

import gradio as gr  # noqa: E402

log = logging.getLogger("r1omni.serve")

SETTING_CHOICES = [("video + audio", "video_audio"), ("video only", "video"), ("audio only", "audio")]
NO_MODEL = """\
## No model to serve yet

`r1omni serve` shows a trained model. Either

- train the demo's models (about 15 minutes on 2 CPU cores): `r1omni demo`, then `r1omni serve`
  (it picks `runs/demo/grpo_faithful/final`, else `runs/demo/grpo/final`), or
- point it at a model folder: `r1omni serve --model DIR` (an r1omni model, or a released
  HumanOmni / R1-Omni folder).
"""
CSS = """
.r1omni-answer h2 { margin: 0; }
"""


def _named(message: str, uploads) -> str:
    """`message` naming uploaded files by their names rather than the server's copies."""
    for path in filter(None, uploads):
        message = message.replace(str(path), Path(path).name)
    return message


def _page_error(err: Exception, uploads=()) -> gr.Error:
    """What the page shows for a failed request: our message, or a pointer to the log."""
    if isinstance(err, R1OmniError):
        return gr.Error(_named(str(err), uploads), duration=None)
    log.exception("request failed")
    return gr.Error(f"internal error ({type(err).__name__}); the server's log has the details", duration=None)


def _answer_markdown(prediction) -> str:
    if prediction.answer:
        shown = f"## {prediction.answer}"
    elif prediction.raw_answer is not None:
        shown = f"## {prediction.raw_answer!r}\n(outside the model's labels)"
    else:
        shown = "## (no answer)\nthe completion has no `<answer>`; the chart shows what the model would answer"
    statistics = "; ".join(f"{modality} features standardised by the statistics of {whose}"
                           for modality, whose in (prediction.statistics or {}).items())
    return shown + (f"\n\n{statistics}" if statistics else "")


def _setting_of(predictor: Predictor) -> str:
    return next(name for name, shown in MODAL_SETTINGS.items() if shown == predictor.modalities)


def build_app(predictor: Predictor | None, model_name: str = "", limits: ServeLimits | None = None,
              work_dir: Path | None = None, server: ServerFiles | None = None) -> gr.Blocks:
    """The page for `predictor` (None: a page that says how to get a model). `model_name` is
    shown in the header: a name, not the server's path. Visitors read only their own uploads,
    and files in `server`'s data folder when it has one."""
    limits = limits or ServeLimits()
    limits.validate()
    server = server or ServerFiles()
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="r1omni-serve-"))
    keep_s = limits.keep_uploads_min * 60
    Sweeper(work_dir, keep_s)
    # Gradio deletes this page's uploads and the copies of its outputs `keep_s` after they were made.
    with gr.Blocks(title="r1omni", analytics_enabled=False, delete_cache=(max(1, int(keep_s / 4)), int(keep_s))) \
            as app:
        gr.Markdown("# r1omni: emotion with its reasoning, from video and audio")
        if predictor is None:
            gr.Markdown(NO_MODEL, elem_id="no-model")
            return app
        gr.Markdown(f"Model: `{model_name}` · labels: {', '.join(predictor.vocab)} · runs on this machine; "
                    f"nothing is sent elsewhere. Clips up to {limits.max_upload_mb} MB and "
                    f"{limits.max_seconds:.0f} s. What you upload (faces and voices included) and the batch "
                    f"downloads stay on the server's disk for {limits.keep_uploads_min:g} minutes, then are deleted.",
                    elem_id="header")
        deadline = Deadline(limits.timeout_s)
        with gr.Tab("One clip"):
            _clip_tab(predictor, limits, deadline, work_dir)
        with gr.Tab("Batch"):
            _batch_tab(predictor, limits, deadline, work_dir, server)
    return app


def _clip_tab(predictor: Predictor, limits: ServeLimits, deadline: Deadline, work_dir: Path) -> None:
    with gr.Row():
        with gr.Column():
            video = gr.Video(label="video (upload or record)", sources=["upload", "webcam"], format=None, height=320,
                             webcam_options=gr.WebcamOptions(mirror=False), elem_id="clip-video")
            audio = gr.Audio(label="audio (upload or record; replaces the video's sound)", type="filepath",
                             sources=["upload", "microphone"], format=None, elem_id="clip-audio")
            setting = gr.Radio(SETTING_CHOICES, value=_setting_of(predictor), label="the model sees",
                               elem_id="clip-setting")
            run = gr.Button("Recognise", variant="primary", elem_id="clip-run")
            examples = example_clips(work_dir / "examples")
            gr.Examples([[str(path), None] for path, _ in examples], inputs=[video, audio],
                        example_labels=[f"synthetic: {label}" for _, label in examples],
                        label="examples from the synthetic world")
        with gr.Column():
            answer = gr.Markdown(elem_id="clip-answer", elem_classes="r1omni-answer")
            reasoning = gr.Textbox(label="reasoning", lines=5, interactive=False, elem_id="clip-reasoning")
            checks = predictor.voice_levels is not None  # a model whose voice-level words were measured
            marked = gr.HighlightedText(label="its claims against the measured sound (eGeMAPS)", visible=checks,
                                        color_map={HOLDS: "green", FAILS: "red"}, show_legend=True,
                                        elem_id="clip-claims")
            claims = gr.Dataframe(headers=["as written", "claim", "measured", "verdict"], interactive=False,
                                  wrap=True, visible=checks, elem_id="clip-claims-table")
            chart = gr.Label(label="probability of each emotion at the answer",
                             num_top_classes=len(predictor.vocab), elem_id="clip-probabilities")
            frames = gr.Gallery(label="frames the model saw (cropped to the face for a model that reads faces)",
                                columns=4, height=260, object_fit="contain",
                                elem_id="clip-frames")
            spectrogram = gr.Image(label="the sound the model heard", interactive=False, elem_id="clip-spectrogram")

    def recognise(video_path, audio_path, shown):
        try:
            view = deadline.run(analyse_clip, predictor, video_path, audio_path, shown, limits)
        except Exception as err:
            raise _page_error(err, (video_path, audio_path)) from None
        p = view.prediction
        gallery, spectrogram = view.pictures_in(Path(tempfile.mkdtemp(prefix="clip-", dir=work_dir)))
        return (_answer_markdown(p), p.reasoning or "(no <think> in the completion)\n" + p.completion,
                claim_segments(p.reasoning, p.claims), claim_rows(p.claims), p.probabilities, gallery, spectrogram)

    run.click(recognise, [video, audio, setting], [answer, reasoning, marked, claims, chart, frames, spectrogram],
              concurrency_id="model")


def _batch_tab(predictor: Predictor, limits: ServeLimits, deadline: Deadline, work_dir: Path,
               server: ServerFiles) -> None:
    files = gr.File(label="media files, and optionally a manifest (.jsonl) that labels them",
                    file_count="multiple", elem_id="batch-files")
    # Only when the operator named a data folder (r1omni serve --data-root); paths are taken from it.
    manifest = gr.Textbox(label="or a manifest in the server's data folder (path inside it)", elem_id="batch-manifest",
                          visible=server.root is not None)
    setting = gr.Radio(SETTING_CHOICES, value=_setting_of(predictor), label="the model sees", elem_id="batch-setting")
    run = gr.Button("Recognise all", variant="primary", elem_id="batch-run")
    summary = gr.Markdown(elem_id="batch-summary")
    table = gr.Dataframe(headers=["clip", "label", "answer", "error", "reasoning"], interactive=False,
                         wrap=True, elem_id="batch-table")
    confusion = gr.Image(label="confusion matrix", interactive=False, visible=False, elem_id="batch-confusion")
    downloads = gr.File(label="download the predictions", file_count="multiple", elem_id="batch-downloads")

    def recognise_all(paths, manifest_path, shown, progress=gr.Progress()):
        out = Path(tempfile.mkdtemp(prefix="batch-", dir=work_dir))
        try:
            view = deadline.run(analyse_batch, predictor, list(paths or []), (manifest_path or "").strip() or None,
                                shown, limits, out, lambda done, total: progress((done, total), unit="clips"),
                                server, stoppable=True)
        except Exception as err:
            raise _page_error(err, paths or ()) from None
        rows = [[p.id, p.label or "", p.answer or "", _named(p.error or "", paths or ()), (p.reasoning or "")[:300]]
                for p in view.predictions]
        failed = sum(p.error is not None for p in view.predictions)
        lines = [f"{len(rows)} clips, {failed} could not be read" if failed else f"{len(rows)} clips"]
        if view.scores is not None:
            lines.append(f"**UAR {view.scores.uar:.1%} · WAR {view.scores.war:.1%}** on the {view.scores.n} "
                         "labelled clips that could be read")
        if view.dropped_labels:
            lines.append("left out, labels the model does not know: "
                         + ", ".join(f"{label} ({n})" for label, n in view.dropped_labels.items()))
        shown_confusion = gr.Image(value=str(view.confusion_png), visible=True) if view.confusion_png \
            else gr.Image(value=None, visible=False)
        return "\n\n".join(lines), rows, shown_confusion, [str(p) for p in view.downloads]

    run.click(recognise_all, [files, manifest, setting], [summary, table, confusion, downloads],
              concurrency_id="model")


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, limits: ServeLimits | None = None,
           block: bool = True, auth: list[tuple[str, str]] | None = None):
    """Serve the page on `host:port`: queued, capped, no share link, no telemetry; with `auth`,
    behind Gradio's login for these (user, password) pairs."""
    limits = limits or ServeLimits()
    app.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size)
    return app.launch(server_name=host, server_port=port, share=False, max_file_size=f"{limits.max_upload_mb}mb",
                      prevent_thread_lock=not block, ssr_mode=False, pwa=False, mcp_server=False,
                      enable_monitoring=False, footer_links=["settings"], css=CSS, quiet=True,
                      allowed_paths=[], auth=auth or None)
