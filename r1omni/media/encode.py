"""Write video and audio files with PyAV: H.264 + AAC clips, and audio-only files.

Used by the synthetic world, the tests and the benchmarks, so nothing needs downloading.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Audio codec per file extension, with the sample format each encoder accepts.
AUDIO_CODECS = {
    ".wav": ("pcm_s16le", "s16"),
    ".flac": ("flac", "s16"),
    ".mp3": ("libmp3lame", "fltp"),
    ".m4a": ("aac", "fltp"),
}


def _audio_frames(stream, audio: np.ndarray, sample_rate: int, sample_format: str):
    """Chunks of mono float `audio` in [-1, 1] as PyAV frames the encoder accepts."""
    chunk = stream.codec_context.frame_size or 1024
    for start in range(0, audio.size, chunk):
        piece = np.clip(audio[start : start + chunk], -1.0, 1.0)
        data = (piece * 32767).astype(np.int16) if sample_format == "s16" else piece
        frame = av.AudioFrame.from_ndarray(data[None], format=sample_format, layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        yield frame


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: int = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 16_000,
    gop: int | None = None,
    crf: int = 23,
    faststart: bool = False,
) -> Path:
    """Encode RGB uint8 frames ``[H, W, 3]`` (and optional mono audio) as H.264 + AAC.

    `gop` is the keyframe interval in frames (x264's default, 250, when None); `faststart`
    puts the index before the data, as files made for streaming have it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    options = {"crf": str(crf), "preset": "veryfast"}
    if gop is not None:
        options.update({"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"})
    muxer_options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=muxer_options) as container:
        video = container.add_stream("libx264", rate=fps, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate, layout="mono")
        for image in itertools.chain([first], frames):
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        if sound is not None:
            for frame in _audio_frames(sound, np.asarray(audio, np.float32), sample_rate, "fltp"):
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int = 16_000) -> Path:
    """Write mono float audio in [-1, 1]; the codec follows the extension (wav, flac, mp3, m4a)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AUDIO_CODECS:
        raise ValueError(f"cannot write audio as {suffix!r}; use one of {sorted(AUDIO_CODECS)}")
    codec, sample_format = AUDIO_CODECS[suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4" if suffix == ".m4a" else None) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout="mono")
        for frame in _audio_frames(stream, np.asarray(audio, np.float32), sample_rate, sample_format):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
