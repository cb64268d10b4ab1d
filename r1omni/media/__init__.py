"""Media in and out: decode frames and audio into arrays (`decode`), find faces in frames (`faces`),
write clips (`encode`)."""

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
    read_face_frames,
    read_frames,
    read_image,
    sampled_images,
    segment_midpoints,
)
from r1omni.media.encode import write_audio, write_video
from r1omni.media.faces import FaceReport, face_rate

__all__ = ["AUDIO_EXTENSIONS", "DEFAULT_FILL", "FRAME_SAMPLINGS", "IMAGE_EXTENSIONS", "MEDIA_EXTENSIONS",
           "RESIZE_MODES", "SAMPLE_RATE", "VIDEO_EXTENSIONS", "FaceReport", "MediaInfo", "check_file", "face_rate",
           "fit_square", "frame_indices", "probe", "read_audio", "read_face_frames", "read_frames", "read_image",
           "sampled_images", "segment_midpoints", "write_audio", "write_video"]
