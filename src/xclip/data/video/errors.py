"""Decoding errors: the same two exception types whatever the backend."""

from __future__ import annotations

__all__ = ["FrameIndexError", "VideoDecodeError", "is_decoder_failure"]


class VideoDecodeError(Exception):
    """A video could not be opened or a requested frame could not be decoded."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # picklable across DataLoader worker processes
        return (type(self), (self.path, self.reason))


class FrameIndexError(VideoDecodeError, IndexError):
    """A requested frame index is outside ``[0, num_frames)``."""


def is_decoder_failure(e: BaseException) -> bool:
    """Whether an exception from a third-party decoder (decord, torchcodec) means the file could
    not be read: they report bad and missing files as ``RuntimeError`` (decord also as its own
    ``DECORDError``), bad arguments as ``ValueError``. Running out of memory, and any other type
    (a ``TypeError`` is a bug), is not about the file and must propagate."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return False
    return isinstance(e, (RuntimeError, ValueError, OSError)) or type(e).__name__ == "DECORDError"
