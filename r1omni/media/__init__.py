"""Media in and out: decode frames and audio into arrays (`decode`), write clips (`encode`)."""

from r1omni.media.decode import (
    AUDIO_EXTENSIONS,
    DEFAULT_FILL,
    FRAME_SAMPLINGS,
    IMAGE_EXTENSIONS,
    MEDIA_EXTENSIONS,
    RESIZE_MODES,
    SAMPLE_RATE,
    VIDEO_EXTENSIONS,
    MediaInfo,
    check_file,
    fit_square,
    frame_indices,
    probe,
    read_audio,
    read_frames,
    read_image,
    segment_midpoints,
)
from r1omni.media.encode import write_audio, write_video

__all__ = ["AUDIO_EXTENSIONS", "DEFAULT_FILL", "FRAME_SAMPLINGS", "IMAGE_EXTENSIONS", "MEDIA_EXTENSIONS",
           "RESIZE_MODES", "SAMPLE_RATE", "VIDEO_EXTENSIONS", "MediaInfo", "check_file", "fit_square", "frame_indices",
           "probe", "read_audio", "read_frames", "read_image", "segment_midpoints", "write_audio", "write_video"]
