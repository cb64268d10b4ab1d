"""Decode video frames and audio with PyAV into numpy arrays.

Video: N frames at the midpoints of N equal segments of the clip (the R1-Omni sampling),
RGB uint8 ``[N, S, S, 3]``, padded to square (the paper's ``expand2square``) or resized.
Only the groups of pictures that hold a wanted frame are decoded: a demux pass (no decoding)
finds each frame's keyframe, then the decoder seeks there.
Audio: mono float32 at 16 kHz, cut (and optionally zero-padded) to a maximum length.

Every failure is a `MediaError` naming the file and the cause. Hostile files are bounded before
they are decoded: file size, frame size (from the container's or image's header) and the source
sample rate are checked against the caps below, decoded audio is cut at `MAX_AUDIO_SECONDS` even
when no length is asked for, and non-finite samples are refused. Paths are always opened as local
files, never as FFmpeg protocols (a file named ``concat:a.mp4|b.mp4`` is that file).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from r1omni.errors import MediaError, MissingStreamError
from r1omni.media.faces import FaceReport, crop_to_faces

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".flv", ".webm", ".mpg", ".mpeg", ".m4v"})
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".m4a", ".ogg", ".aac", ".opus"})
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
SAMPLE_RATE = 16_000
# SigLIP's processor mean (0.5) as uint8: HumanOmni pads frames with the processor mean.
DEFAULT_FILL = (127, 127, 127)
RESIZE_MODES = ("pad", "resize")
# Which frames: midpoints of equal time segments (R1-Omni's data pipeline), or the official
# HumanOmni/R1-Omni inference formula on frame indices (`frame_indices`).
FRAME_SAMPLINGS = ("time", "index")
RESAMPLING = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
# Caps on what one file may cost to decode (documented in docs/input.md).
MAX_FILE_BYTES = 4 * 2**30
MAX_FRAME_PIXELS = 4096 * 4096  # per decoded frame or still image (a 4K UHD frame is 3840 x 2160)
MAX_AUDIO_SECONDS = 3600.0  # decoded audio when the caller asks for the whole track
SOURCE_RATES = (1_000, 768_000)  # Hz: a declared rate outside this is not real audio
# What FFmpeg, PyAV and PIL raise on files they cannot read, besides FFmpegError.
_DECODER_ERRORS = (av.FFmpegError, UnicodeDecodeError, EOFError, Image.DecompressionBombError)


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds, read from its headers without decoding."""

    path: str
    duration: float | None  # seconds
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None


def check_file(path: Path) -> None:
    """A clear `MediaError` for a path that is missing, a folder or empty."""
    try:
        if not path.exists():
            raise MediaError(path, "file not found")
        if path.is_dir():
            raise MediaError(path, "is a directory, not a media file")
        size = path.stat().st_size
    except OSError as err:  # e.g. a name longer than the file system allows
        raise MediaError(path, f"cannot be read ({err.strerror or err})") from None
    if size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise MediaError(path, f"file is {size / 2**30:.1f} GiB, over the {MAX_FILE_BYTES / 2**30:.0f} GiB cap")


def local_url(path: Path) -> str:
    """The path as FFmpeg's ``file:`` protocol URL, so that no part of a file's name selects
    another protocol (``concat:``, ``subfile,``, ``http:``)."""
    return "file:" + str(path.absolute())


@contextmanager
def _open(path: Path) -> Iterator[av.container.InputContainer]:
    """Open `path` with PyAV, turning every FFmpeg error into a `MediaError`."""
    check_file(path)
    try:
        container = av.open(local_url(path), metadata_errors="ignore")
    except (*_DECODER_ERRORS, OSError) as err:
        raise MediaError(path, f"not a readable media file ({_reason(err)})") from None
    try:
        yield container
    except _DECODER_ERRORS as err:
        raise MediaError(path, f"decoding failed, file truncated or corrupt ({_reason(err)})") from None
    finally:
        container.close()


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _video_stream(path: Path, container):
    """The first video stream that is a moving picture (cover art in an audio file is not), or
    None; a stream FFmpeg has no decoder for is a `MediaError`."""
    for stream in container.streams.video:
        if stream.disposition & av.stream.Disposition.attached_pic:
            continue
        _check_decoder(path, stream)
        return stream
    return None


def _audio_stream(path: Path, container):
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    _check_decoder(path, stream)
    return stream


def _check_decoder(path: Path, stream) -> None:
    if stream.codec_context is None:
        raise MediaError(path, f"no decoder for its {stream.type} codec")


def _check_frame_size(path: Path, width: int | None, height: int | None) -> None:
    if width and height and width * height > MAX_FRAME_PIXELS:
        raise MediaError(path, f"frames of {width}x{height} are over the cap of {MAX_FRAME_PIXELS:,} pixels")


def probe(path: str | Path) -> MediaInfo:
    """Streams, duration and sizes of a media file or still image."""
    path = Path(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        with _open_image(path) as image:
            return MediaInfo(str(path), None, True, False, image.width, image.height)
    with _open(path) as container:
        video, audio = _video_stream(path, container), _audio_stream(path, container)
        duration = container.duration / av.time_base if container.duration else None
        return MediaInfo(
            str(path),
            duration,
            has_video=video is not None,
            has_audio=audio is not None,
            width=video.codec_context.width if video else None,
            height=video.codec_context.height if video else None,
            fps=float(video.average_rate) if video and video.average_rate else None,
            sample_rate=audio.codec_context.sample_rate if audio else None,
        )


# ----------------------------------------------------------------------------- frames


def fit_square(
    image: Image.Image, size: int | None, mode: str = "pad", fill=DEFAULT_FILL, resample: str = "bilinear"
) -> np.ndarray:
    """An RGB image as uint8 ``[S, S, 3]``: padded to square around its centre, or stretched.

    `size=None` keeps the longer side's length (pad mode only). `resample`: bilinear or bicubic
    (SigLIP's processor, which HumanOmni uses, stretches with PIL's bicubic filter).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    if resample not in RESAMPLING:
        raise ValueError(f"resample must be one of {tuple(RESAMPLING)}, got {resample!r}")
    w, h = image.size
    if mode == "resize":
        if size is None:
            raise ValueError("resize mode needs a size")
        return np.asarray(image.resize((size, size), RESAMPLING[resample]))
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), tuple(fill))
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    if size is not None and size != side:
        canvas = canvas.resize((size, size), RESAMPLING[resample])
    return np.asarray(canvas)


@contextmanager
def _open_image(path: Path) -> Iterator[Image.Image]:
    check_file(path)
    try:
        with Image.open(path) as image:
            _check_frame_size(path, *image.size)  # from the header, before the pixels are read
            image.load()
            yield image
    except (UnidentifiedImageError, OSError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise MediaError(path, f"not a readable image ({err})") from None


def read_image(
    path: str | Path, size: int | None = 224, mode: str = "pad", fill=DEFAULT_FILL, resample: str = "bilinear"
) -> np.ndarray:
    """A still image as a one-frame video, uint8 ``[1, S, S, 3]``."""
    with _open_image(Path(path)) as image:
        return fit_square(image.convert("RGB"), size, mode, fill, resample)[None]


def segment_midpoints(start: float, duration: float, num_frames: int) -> list[float]:
    """Midpoints of `num_frames` equal segments of ``[start, start + duration)``."""
    return [start + (i + 0.5) * duration / num_frames for i in range(num_frames)]


def frame_indices(count: int, num_frames: int) -> list[int]:
    """The official HumanOmni/R1-Omni `frame_sample` of `num_frames` out of `count` frames:
    ``round((count - 1) / num_frames * (i + 0.5) + 1e-6)`` (the 1e-6 sends exact halves up)."""
    segment = (count - 1) / num_frames
    return np.round(segment * (np.arange(num_frames) + 0.5) + 1e-6).astype(int).tolist()


@dataclass
class _FrameIndex:
    """Presentation times (stream time-base units) of every frame and of the keyframes."""

    pts: list[int]  # sorted
    keyframes: list[int]  # sorted
    end: int  # pts just after the last frame

    def frame_at(self, t: float) -> int:
        """The pts of the frame on screen at time `t`: the last one starting at or before it."""
        i = bisect.bisect_right(self.pts, t) - 1
        return self.pts[max(i, 0)]

    def keyframe_before(self, pts: int) -> int:
        i = bisect.bisect_right(self.keyframes, pts) - 1
        return self.keyframes[max(i, 0)]


def _index_video(container, stream) -> _FrameIndex:
    """Demux (no decoding) the video packets to learn frame times and keyframe positions."""
    pts, keys, end = [], [], None
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        pts.append(packet.pts)
        if packet.is_keyframe:
            keys.append(packet.pts)
        stop = packet.pts + (packet.duration or 0)
        end = stop if end is None else max(end, stop)
    if not pts:
        raise MediaError(container.name, "video stream holds no frames")
    pts.sort()
    keys.sort()
    if end == pts[-1] and len(pts) > 1:  # no packet durations: assume a constant frame rate
        end += (pts[-1] - pts[0]) // (len(pts) - 1)
    _check_complete(container.name, stream, end - pts[0])
    return _FrameIndex(pts, keys or pts[:1], end)


def _check_complete(name, stream, present, kind: str = "video") -> None:
    """Raise when the header promises more of the stream than the file holds (a cut-off
    download); `present` is in the stream's time base."""
    if not stream.duration or not stream.time_base:
        return
    promised, found = float(stream.duration * stream.time_base), float(present * stream.time_base)
    if promised - found > max(0.5, 0.05 * promised):
        raise MediaError(name, f"truncated: the header says {promised:.2f} s of {kind}, the file holds {found:.2f} s")


def read_frames(
    path: str | Path,
    num_frames: int = 8,
    size: int | None = 224,
    mode: str = "pad",
    fill=DEFAULT_FILL,
    sampling: str = "time",
    resample: str = "bilinear",
) -> np.ndarray:
    """`num_frames` RGB frames, uint8 ``[N, S, S, 3]``: at the midpoints of equal time segments
    of the clip (``sampling="time"``) or by the official HumanOmni formula on frame indices
    (``"index"``, `frame_indices`).

    A still image gives one frame ``[1, S, S, 3]``. A clip with fewer frames than asked repeats
    frames, as nearest-frame sampling does. Raises `MissingStreamError` for a clip without video.
    """
    images = sampled_images(path, num_frames, sampling)
    return np.stack([fit_square(image, size, mode, fill, resample) for image in images])


def read_face_frames(
    path: str | Path,
    num_frames: int = 8,
    size: int | None = 224,
    mode: str = "pad",
    fill=DEFAULT_FILL,
    sampling: str = "time",
    resample: str = "bilinear",
) -> tuple[np.ndarray, FaceReport]:
    """As `read_frames`, each frame cropped to the face first (r1omni.media.faces has the policy
    for frames without a face, several faces and images that are face crops already), and what
    the search found."""
    faces, report = crop_to_faces(sampled_images(path, num_frames, sampling))
    return np.stack([fit_square(face, size, mode, fill, resample) for face in faces]), report


def sampled_images(path: str | Path, num_frames: int = 8, sampling: str = "time") -> list[Image.Image]:
    """The sampled frames of a clip (one for a still image) as RGB PIL images at source size."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if sampling not in FRAME_SAMPLINGS:
        raise ValueError(f"frame sampling must be one of {FRAME_SAMPLINGS}, got {sampling!r}")
    path = Path(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        with _open_image(path) as image:
            return [image.convert("RGB")]
    with _open(path) as container:
        stream = _video_stream(path, container)
        if stream is None:
            raise MissingStreamError(path, "video")
        _check_frame_size(path, stream.codec_context.width, stream.codec_context.height)
        # Slice threads only: frame threads delay output and would ignore per-packet skipping.
        stream.thread_type = "SLICE"
        index = _index_video(container, stream)
        if sampling == "index":
            wanted = [index.pts[i] for i in frame_indices(len(index.pts), num_frames)]
        else:
            times = segment_midpoints(index.pts[0], index.end - index.pts[0], num_frames)
            wanted = [index.frame_at(t) for t in times]
        decoded = _decode_frames(path, container, stream, index, sorted(set(wanted)))
        return [decoded[p] for p in wanted]


def _decode_frames(path, container, stream, index: _FrameIndex, wanted: list[int]) -> dict:
    """Decode the frames whose pts are in `wanted` (sorted) to PIL images.

    Seeks to a wanted frame's keyframe unless the decoder is already inside that group of
    pictures, and decodes only the wanted frames and the frames others refer to: non-reference
    frames in between are skipped by the decoder (``skip_frame=NONREF``).
    """
    wanted_set = set(wanted)
    context = stream.codec_context
    images: dict[int, Image.Image] = {}
    packets = None  # live demux iterator
    pending: list = []  # frames decoded but not yet matched to a target, in pts order
    last_pts = None  # pts of the last frame decoded
    for target in wanted:
        keyframe = index.keyframe_before(target)
        if packets is None or last_pts is None or last_pts < keyframe:
            container.seek(keyframe, stream=stream, backward=True, any_frame=False)
            packets, pending = container.demux(stream), []
        while not pending or pending[-1].pts < target:
            packet = next(packets, None)
            if packet is None:
                break
            # Decoded when wanted or when it is a reference for later frames; an empty packet
            # (end of stream) drains the decoder.
            context.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in wanted_set else "NONREF"
            pending.extend(f for f in stream.decode(packet) if f.pts is not None)
            if pending:
                last_pts = pending[-1].pts
        match = next((f for f in pending if f.pts >= target), None)
        if match is None:
            seconds = float(target * stream.time_base)
            raise MediaError(path, f"stream ends before the frame at {seconds:.2f} s (truncated?)")
        _check_frame_size(path, match.width, match.height)  # a stream may change size mid-way
        images[target] = match.to_image()
        pending = [f for f in pending if f.pts > target]
    return images


# ----------------------------------------------------------------------------- audio


def read_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: float | None = 30.0,
    pad: bool = False,
) -> np.ndarray:
    """The first audio stream as mono float32 ``[T]`` at `sample_rate`.

    Cut to `max_seconds` (None: the whole track, up to `MAX_AUDIO_SECONDS`), zero-padded to
    exactly that length when `pad`. Raises `MissingStreamError` for a file without audio.
    """
    path = Path(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise MissingStreamError(path, "audio")
    seconds = MAX_AUDIO_SECONDS if max_seconds is None else min(max_seconds, MAX_AUDIO_SECONDS)
    limit = int(round(seconds * sample_rate))
    with _open(path) as container:
        stream = _audio_stream(path, container)
        if stream is None:
            raise MissingStreamError(path, "audio")
        _check_source_rate(path, stream.codec_context.sample_rate)
        chunks, total = [], 0
        for out in _resampled(path, container.decode(stream), sample_rate):
            chunks.append(out)
            total += out.size
            if total >= limit:
                break
        else:
            _check_complete(path, stream, total / sample_rate / stream.time_base, "audio")
    if total == 0:
        raise MediaError(path, "audio stream holds no samples")
    audio = np.concatenate(chunks).astype(np.float32, copy=False)[:limit]
    if not np.isfinite(audio).all():
        raise MediaError(path, "audio holds NaN or infinite samples")
    if pad and max_seconds is not None and audio.size < limit:
        audio = np.pad(audio, (0, limit - audio.size))
    return audio


def _check_source_rate(path: Path, rate: int | None) -> None:
    low, high = SOURCE_RATES
    if rate is not None and not low <= rate <= high:
        raise MediaError(path, f"declares a sample rate of {rate} Hz, outside {low}-{high} Hz")


def _resampled(path: Path, frames, sample_rate: int) -> Iterator[np.ndarray]:
    """Mono float32 chunks at `sample_rate` from decoded frames. A stream whose rate, layout or
    sample format changes mid-way (concatenated MP3/ADTS files) gets a new resampler there."""
    def arrays(resampled) -> Iterator[np.ndarray]:
        return (out.to_ndarray().reshape(-1) for out in resampled)

    resampler, setup = None, None
    for frame in frames:
        _check_source_rate(path, frame.sample_rate)
        if (frame.sample_rate, frame.layout.name, frame.format.name) != setup:
            if resampler is not None:
                yield from arrays(resampler.resample(None))  # flush the previous setup's samples
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            setup = (frame.sample_rate, frame.layout.name, frame.format.name)
        yield from arrays(resampler.resample(frame))
    if resampler is not None:
        yield from arrays(resampler.resample(None))
