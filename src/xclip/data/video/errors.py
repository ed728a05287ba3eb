"""Decoding errors: the same two exception types whatever the backend."""

from __future__ import annotations

__all__ = ["FrameIndexError", "VideoDecodeError"]


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
