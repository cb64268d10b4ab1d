"""Crafted and mutated media files for the hostile-input tests and the fuzz run.

`crafted(folder)` writes files that each target one known way decoders fail or blow up;
`mutate(data, rng)` damages a valid file the ways real downloads and attackers do.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from PIL import Image

from r1omni.media import write_audio, write_video


def wav_bytes(data: bytes, rate: int = 16_000, tag: int = 1, bits: int = 16, channels: int = 1,
              extra: bytes = b"") -> bytes:
    """A RIFF/WAVE file around `data` with whatever header values the caller claims."""
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pcm16(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    return (np.sin(np.arange(int(seconds * rate)) / 5) * 9000).astype("<i2").tobytes()


def raw_mp3(path: Path, rate: int, seconds: float = 1.0) -> Path:
    """An MP3 with no ID3 or Xing header, so that two of them concatenate into one stream."""
    with av.open(str(path), "w", format="mp3", options={"id3v2_version": "0", "write_xing": "0"}) as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        tone = (np.sin(np.arange(int(rate * seconds)) / 7) * 0.5).astype(np.float32)
        size = stream.codec_context.frame_size or 1152
        for start in range(0, tone.size, size):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + size].copy(), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def mp3_with_cover_art(path: Path, seconds: float = 1.0) -> Path:
    """An MP3 whose second stream is an attached picture (album art), as music files carry."""
    with av.open(str(path), "w") as out:
        sound = out.add_stream("libmp3lame", rate=16_000, layout="mono")
        art = out.add_stream("mjpeg")
        art.width = art.height = 32
        art.pix_fmt = "yuvj420p"
        art.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")
        out.mux(art.encode(picture.reformat(format="yuvj420p")))
        out.mux(art.encode(None))
        tone = (np.sin(np.arange(int(16_000 * seconds)) / 7) * 0.5).astype(np.float32)
        for start in range(0, tone.size, 1152):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1152].copy(), format="flt", layout="mono")
            frame.sample_rate, frame.pts = 16_000, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return path


def crafted(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files built to break a decoder, each with the cause its `MediaError` must give."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, tuple[bytes | Callable[[Path], object], str, str]] = {
        "unknown_codec": (wav_bytes(pcm16(), tag=0x7777), "unknown.wav", "no decoder"),
        "one_hz": (wav_bytes(pcm16(2.0), rate=1), "one_hz.wav", "sample rate of 1 Hz"),
        "nan_audio": (wav_bytes(np.full(16_000, np.nan, "<f4").tobytes(), tag=3, bits=32), "nan.wav", "NaN"),
        "inf_audio": (wav_bytes(np.full(16_000, np.inf, "<f4").tobytes(), tag=3, bits=32), "inf.wav", "infinite"),
        "huge_png": (lambda p: Image.new("RGB", (5000, 5000)).save(p), "flat.png", "over the cap"),
        # Over twice PIL's own limit: PIL refuses it when opening (DecompressionBombError).
        "bomb_png": (lambda p: Image.new("1", (14_000, 14_000)).save(p), "bomb.png", "not a readable image"),
        "huge_video": (lambda p: write_video(p, (np.zeros((4160, 4160, 3), np.uint8) for _ in range(2)), fps=25),
                       "huge.mp4", "over the cap"),
        "header_only": (wav_bytes(b"")[:44], "header.wav", "no samples"),
    }
    files = {}
    for name, (content, filename, cause) in cases.items():
        path = folder / filename
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)
        files[name] = (path, cause)
    return files


def seed_files(folder: Path) -> list[Path]:
    """Small valid files of every kind the decoders take, to mutate."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(25)]
    tone = (np.sin(np.arange(16_000) / 5) * 0.3).astype(np.float32)
    paths = [write_video(folder / "clip.mp4", iter(frames), audio=tone, gop=5),
             write_video(folder / "clip.mkv", iter(frames[:10]), audio=tone[:6400]),
             write_video(folder / "silent.mp4", iter(frames[:10]), faststart=True)]
    paths += [write_audio(folder / f"tone{ext}", tone, 16_000) for ext in (".wav", ".flac", ".mp3", ".m4a")]
    Image.fromarray(frames[0]).save(folder / "face.png")
    Image.fromarray(frames[1]).save(folder / "face.jpg")
    paths += [folder / "face.png", folder / "face.jpg", mp3_with_cover_art(folder / "cover.mp3")]
    return paths


def mutate(data: bytes, rng: np.random.Generator, other: bytes) -> tuple[str, bytes]:
    """One damaged copy of `data`: truncated, bit-flipped, spliced with `other`, a chunk
    duplicated, or its header bytes overwritten; returns (what was done, bytes)."""
    kind = rng.choice(["truncate", "flip", "splice", "duplicate", "header"])
    size = len(data)
    if kind == "truncate":
        return kind, data[: int(rng.integers(1, max(size, 2)))]
    if kind == "flip":
        out = bytearray(data)
        for at in rng.integers(0, size, int(rng.integers(1, 20))):
            out[at] ^= 1 << int(rng.integers(0, 8))
        return kind, bytes(out)
    if kind == "splice":
        at, start = int(rng.integers(0, size)), int(rng.integers(0, len(other)))
        return kind, data[:at] + other[start : start + int(rng.integers(1, 4096))] + data[at:]
    if kind == "duplicate":
        start = int(rng.integers(0, size))
        chunk = data[start : start + int(rng.integers(1, 8192))]
        return kind, data[:start] + chunk * int(rng.integers(2, 6)) + data[start:]
    out = bytearray(data)
    for at in rng.integers(0, min(size, 64), int(rng.integers(1, 6))):
        out[at] = int(rng.integers(0, 256))
    return kind, bytes(out)
