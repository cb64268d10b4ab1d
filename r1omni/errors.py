"""Errors r1omni raises for bad input: each names the file or value and the problem.

The CLI catches `R1OmniError` and prints its message without a traceback; anything else
is a bug and keeps its traceback.
"""


class R1OmniError(Exception):
    """Base class for every error caused by the user's input rather than by r1omni."""


class ConfigError(R1OmniError):
    """A configuration (training run, model, preset) that cannot be built or run."""


class LabelError(R1OmniError, ValueError):
    """A label that is not in the vocabulary it is checked against."""


class MediaError(R1OmniError):
    """A media file that cannot be decoded: missing, empty, truncated or not media at all."""

    def __init__(self, path, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


class MissingStreamError(MediaError):
    """A readable media file that lacks the stream asked for (no audio, or no video)."""

    def __init__(self, path, kind: str):
        self.kind = kind
        super().__init__(path, f"has no {kind} stream")


class ManifestError(R1OmniError):
    """A manifest or dataset file that is malformed."""
