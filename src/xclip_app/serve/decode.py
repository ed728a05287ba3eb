"""A stranger's video made ready for the model, off the event loop: the server's decoding.

The work is the classifier's own :class:`~xclip.inference.VideoProcessor` (the library's one
video path), made strict for a stranger's file (:func:`server_processor`): FFmpeg restricted to
that one file or buffer and to real video containers (``untrusted=True``), a time limit, and a
pixel cap checked from the container's header before any frame is decoded (a 50 KB upload of
4096x4096 frames would otherwise decode to 400 MB). :func:`open_checked` opens,
:func:`read_spans` prepares the whole video (Classify) or one window per span (Timeline),
:func:`read_frame` reads one frame (a Search thumbnail); all
run in :class:`DecodePool`, a bounded pool of threads outside the model's thread, so a slow file
delays only its own request. The decoder's errors become 413/422 answers here.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from xclip.data.video import VideoDecodeError, VideoReader, VideoTooLargeError
from xclip.inference import PreparedVideo, VideoClassifier, VideoProcessor

from .api_errors import ApiError, redact_paths

__all__ = ["DecodePool", "Limits", "open_checked", "read_frame", "read_spans", "server_processor"]

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """``timeout``: seconds FFmpeg may take per call; ``max_pixels``: width x height of a frame;
    ``root``: the video folder (error messages name files relative to it)."""

    timeout: float = 120.0
    max_pixels: int = 3840 * 2160
    root: Path | None = None


@functools.lru_cache(maxsize=8)  # one per (classifier, limits): its transform is built once
def server_processor(clf: VideoClassifier, limits: Limits) -> VideoProcessor:
    """The classifier's processor for a stranger's file: PyAV, ``untrusted``, the limits."""
    return clf.processor.replace(
        backend="pyav", untrusted=True, timeout=limits.timeout, max_pixels=limits.max_pixels
    )


def _answer(name: str, e: VideoDecodeError, limits: Limits) -> ApiError:
    if isinstance(e, VideoTooLargeError):
        return ApiError(
            413,
            f"{name}: frames of {e.width}x{e.height} pixels are larger than this server accepts "
            f"({limits.max_pixels / 1e6:.1f} million pixels a frame, its --max-pixels); "
            f"shrink the video first",
        )
    reason = redact_paths(e.reason, limits.root).splitlines()[0]
    return ApiError(422, f"{name} could not be read as a video: {reason}")


def open_checked(
    clf: VideoClassifier, source: Path | bytes, name: str, limits: Limits
) -> VideoReader:
    """An open reader of ``source`` whose frames are within ``limits.max_pixels``: 413 above
    it, 422 for what FFmpeg cannot read."""
    try:
        return server_processor(clf, limits).open(
            str(source) if isinstance(source, Path) else source, name
        )
    except VideoDecodeError as e:
        raise _answer(name, e, limits) from None


def read_spans(
    clf: VideoClassifier,
    reader: VideoReader,
    spans: Sequence[tuple[int, int]] | None,
    *,
    name: str,
    limits: Limits,
    keep_frames: bool = False,
    processor: VideoProcessor | None = None,
) -> list[PreparedVideo]:
    """The whole video (``spans=None``: one :class:`PreparedVideo`) or one per frame span
    ``[lo, hi)`` (a timeline's windows, read in one decoder pass). ``processor``: another
    strict processor than the classifier's (other views: a moments library's)."""
    proc = processor or server_processor(clf, limits)
    try:
        if spans is None:
            return [proc.from_reader(reader, keep_frames=keep_frames, name=name)]
        return proc.windows(reader, spans, reader.metadata.fps, name, keep_frames=keep_frames)
    except VideoDecodeError as e:
        raise _answer(name, e, limits) from None


def read_frame(reader: VideoReader, index: int, *, name: str, limits: Limits) -> np.ndarray:
    """Frame ``index`` (clamped to the video) of an open reader, uint8 ``[H, W, 3]``."""
    try:
        return reader.get_frame(min(max(0, index), reader.num_frames - 1))
    except VideoDecodeError as e:
        raise _answer(name, e, limits) from None


class DecodePool:
    """``workers`` threads for decoding; ``run`` awaits a call in one of them."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xclip-decode")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
