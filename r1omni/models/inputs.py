"""From media files to `ClipMedia`, with the policy's decoding settings."""

from __future__ import annotations

from pathlib import Path

from r1omni.errors import MissingStreamError
from r1omni.media import read_audio, read_frames
from r1omni.models.cache import content_hash
from r1omni.models.policy import ClipMedia, PolicyConfig


def load_clip(video: str | Path | None, audio: str | Path | None, config: PolicyConfig,
              modalities=("video", "audio")) -> ClipMedia:
    """Decode what the policy's towers read. A stream the file lacks is left out (the prompt
    then carries only the placeholders that exist); other media errors propagate."""
    media = ClipMedia()
    if video and "video" in modalities and "video" in config.towers:
        try:
            media.frames = read_frames(video, config.num_frames, config.frame_size)
            media.video_key = content_hash(video)
        except MissingStreamError:
            pass
    if audio and "audio" in modalities and "audio" in config.towers:
        try:
            media.audio = read_audio(audio, max_seconds=config.max_audio_seconds)
            media.audio_key = content_hash(audio)
        except MissingStreamError:
            pass
    return media
