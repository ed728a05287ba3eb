"""A stranger's video made ready for the model, off the event loop: the server's one decoder.

:func:`open_checked` opens an upload (bytes) or a picked file with FFmpeg restricted to that one
file or buffer and to real video containers (``untrusted=True``), under a time limit, after
refusing a frame size above the pixel cap from the container's header, before any frame is
decoded (a 50 KB upload of 4096x4096 frames would otherwise decode to 400 MB).
:func:`read_spans` samples, decodes and preprocesses spans of frames with the classifier's own
``sample_indices`` and ``preprocess``: the whole video for Classify, one span per window for the
Timeline. Both run in :class:`DecodePool`, a bounded pool of threads outside the model's thread,
so a slow file delays only its own request.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from xclip.data.video import VideoDecodeError, VideoReader, open_video
from xclip.data.video.pyav_reader import UNTRUSTED_FORMATS
from xclip.inference import PreparedVideo, VideoClassifier

from .api_errors import ApiError, redact_paths

__all__ = ["DecodePool", "Limits", "open_checked", "read_spans"]

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """``timeout``: seconds FFmpeg may take per call; ``max_pixels``: width x height of a frame;
    ``root``: the video folder (error messages name files relative to it)."""

    timeout: float = 120.0
    max_pixels: int = 3840 * 2160
    root: Path | None = None


def _refuse_size(name: str, width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_pixels:
        raise ApiError(
            413,
            f"{name}: frames of {width}x{height} pixels are larger than this server accepts "
            f"({limits.max_pixels / 1e6:.1f} million pixels a frame, its --max-pixels); "
            f"shrink the video first",
        )


def frame_size(source: Path | bytes, limits: Limits) -> tuple[int, int]:
    """Width and height of the first video stream from the container's header (no frame is
    decoded); ``(0, 0)`` when the header does not say. Opened as ``untrusted=True`` opens."""
    import av  # lazy: CLI start-up

    options = {
        "format_whitelist": ",".join(UNTRUSTED_FORMATS),
        "protocol_whitelist": "none" if isinstance(source, bytes) else "file",
    }
    src = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with av.open(
            src, "r", container_options=options, timeout=(limits.timeout, limits.timeout)
        ) as container:
            streams = container.streams.video
            if not streams:
                return 0, 0
            cc = streams[0].codec_context
            return int(cc.width or 0), int(cc.height or 0)
    except (av.FFmpegError, OSError, ValueError):
        return 0, 0  # not a video: open_video says why, in its own words


def open_checked(
    clf: VideoClassifier, source: Path | bytes, name: str, limits: Limits
) -> VideoReader:
    """An open reader of ``source`` whose frames are within ``limits.max_pixels``: 413 above
    it, 422 for what FFmpeg cannot read."""
    _refuse_size(name, *frame_size(source, limits), limits)
    try:
        reader = open_video(
            str(source) if isinstance(source, Path) else source,
            "pyav",
            name=name,
            num_threads=clf.decode_threads,
            timeout=limits.timeout,
            untrusted=True,
        )
    except VideoDecodeError as e:
        raise _unreadable(name, e, limits) from None
    meta = reader.metadata
    try:  # (a header without a size: the first frame, decoded on opening, has one)
        _refuse_size(name, meta.width, meta.height, limits)
    except ApiError:
        reader.close()
        raise
    return reader


def _unreadable(name: str, e: VideoDecodeError, limits: Limits) -> ApiError:
    reason = redact_paths(e.reason, limits.root).splitlines()[0]
    return ApiError(422, f"{name} could not be read as a video: {reason}")


def read_spans(
    clf: VideoClassifier,
    reader: VideoReader,
    spans: Sequence[tuple[int, int]],
    *,
    name: str,
    limits: Limits,
    keep_frames: bool = False,
) -> list[PreparedVideo]:
    """One :class:`PreparedVideo` per frame span ``[lo, hi)``: T frames per view sampled inside
    it by ``clf.sample_indices``, decoded, and preprocessed by ``clf.preprocess``."""
    t0 = time.perf_counter()
    idx = [lo + clf.sample_indices(hi - lo) for lo, hi in spans]  # each [num_clips, T]
    try:
        flat = reader.get_frames(np.concatenate([i.reshape(-1) for i in idx]))  # [N, H, W, 3]
    except VideoDecodeError as e:
        raise _unreadable(name, e, limits) from None
    frames = flat.reshape(len(spans), *idx[0].shape, *flat.shape[1:])  # [S, clips, T, H, W, 3]
    t1 = time.perf_counter()
    meta = reader.metadata
    out = []
    for i, f in zip(idx, frames, strict=True):
        out.append(
            PreparedVideo(
                name,
                clf.preprocess(f),
                i,
                f if keep_frames else None,
                fps=meta.fps,
                num_frames=meta.num_frames,
                duration=meta.duration,
            )  # fmt: skip
        )
    t2 = time.perf_counter()
    for p in out:
        p.timings.update(decode=(t1 - t0) / len(out), preprocess=(t2 - t1) / len(out))
    return out


class DecodePool:
    """``workers`` threads for decoding; ``run`` awaits a call in one of them."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xclip-decode")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
