"""Decoding errors: the same two exception types whatever the backend."""

from __future__ import annotations

from xclip.errors import InputError

__all__ = ["FrameIndexError", "VideoDecodeError", "VideoTooLargeError", "is_decoder_failure"]


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


class VideoTooLargeError(VideoDecodeError, InputError):
    """A video whose frames are larger than a pixel cap (``max_pixels``), refused from the
    container's header before any frame is decoded: a 50 KB upload can decode to hundreds of
    MB. A :class:`VideoDecodeError` (a batch records the video as failed) and an
    ``InputError`` (one line on the command line)."""

    def __init__(self, path: str, width: int, height: int, limit: int):
        self.width, self.height, self.limit = width, height, limit
        super().__init__(
            path,
            f"frames of {width}x{height} ({width * height:,} pixels) are larger than the limit "
            f"of {limit:,} pixels; scale the video down, e.g. "
            f"`ffmpeg -i IN -vf scale=-2:720 OUT.mp4`",
        )

    def __reduce__(self):
        return (type(self), (self.path, self.width, self.height, self.limit))


def is_decoder_failure(e: BaseException) -> bool:
    """Whether an exception from a third-party decoder (decord, torchcodec) means the file could
    not be read: they report bad and missing files as ``RuntimeError`` (decord also as its own
    ``DECORDError``), bad arguments as ``ValueError``. Running out of memory, and any other type
    (a ``TypeError`` is a bug), is not about the file and must propagate."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return False
    return isinstance(e, (RuntimeError, ValueError, OSError)) or type(e).__name__ == "DECORDError"
