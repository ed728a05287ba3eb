"""Window embeddings of long videos: one open decoder per video, one embedding per time window.

The windows are :func:`~xclip.inference.timeline.frame_windows` (the timeline's); each window is
embedded like a whole video (T frames at its segment centres, the pipeline's views averaged), so
a window of a long video and a short clip of the same frames get the same embedding. A video is
opened once; its windows are prepared by the model's
:class:`~xclip.inference.processor.VideoProcessor` and encoded a batch at a time
(``pipe.batch_size`` views a call), so memory is bounded by one batch whatever the video's
length.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from .errors import explain_decode_errors
from .pipeline import VideoPipeline
from .timeline import MAX_WINDOWS, check_window, frame_windows

__all__ = ["WindowBatch", "iter_window_embeddings"]


class WindowBatch:
    """Embeddings of consecutive windows of one video: ``starts``/``ends`` in seconds (float64
    ``[W]``), ``embeds`` float32 ``[W, C]`` (views averaged, not normalised), and the video's
    ``num_windows``, ``num_frames``, ``fps`` and ``duration``."""

    def __init__(self, starts, ends, embeds, *, first, num_windows, num_frames, fps) -> None:
        self.starts, self.ends, self.embeds = starts, ends, embeds
        self.first, self.num_windows = first, num_windows
        self.num_frames, self.fps = num_frames, fps
        self.duration = num_frames / fps if fps else None

    def __len__(self) -> int:
        return len(self.starts)


def iter_window_embeddings(
    pipe: VideoPipeline,
    video: str | os.PathLike | bytes,
    window: float,
    stride: float | None = None,
    *,
    max_windows: int | None = MAX_WINDOWS,
    name: str | None = None,
) -> Iterator[WindowBatch]:
    """The window embeddings of ``video`` (a path or the bytes of a file), in order, a batch of
    windows at a time. ``window``/``stride`` in seconds (stride default: the window).

    Errors as :meth:`VideoPipeline.open_reader` (a missing file, an undecodable one: the
    failures a batch job records) and :class:`~xclip.inference.timeline.TimelineError` for
    windows that cannot be run, raised before any window is encoded."""
    stride = window if stride is None else stride
    check_window(window, stride)
    source = name or (os.fspath(video) if isinstance(video, str | os.PathLike) else "<bytes>")
    per_call = max(1, pipe.batch_size // pipe.processor.num_views)
    with explain_decode_errors(), pipe.open_reader(video, name) as reader:
        fps, total = reader.metadata.fps, reader.num_frames
        windows = frame_windows(total, fps, window, stride, max_windows=max_windows, source=source)
        for c in range(0, len(windows), per_call):
            chunk = windows[c : c + per_call]
            prepared = pipe.processor.windows(reader, chunk, fps, source)  # one decoder pass
            embeds = torch.stack(
                [
                    f.embeds.float().mean(dim=0)
                    for f in pipe.encode_many([p.clips for p in prepared])
                ]
            )  # [W, C], views averaged
            if not bool(torch.isfinite(embeds).all()):
                raise FloatingPointError(
                    f"{source}: the model gave a NaN or infinite embedding (its weights hold "
                    f"NaN/inf, or {pipe.precision} overflowed: try precision='fp32')"
                )
            yield WindowBatch(
                np.array([p.start for p in prepared]),
                np.array([p.end for p in prepared]),
                embeds.cpu(),
                first=c, num_windows=len(windows), num_frames=total, fps=fps,
            )  # fmt: skip
