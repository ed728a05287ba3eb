"""Timelines of long videos: the time windows that are each classified like a whole video."""

from __future__ import annotations

__all__ = ["frame_windows"]


def frame_windows(total: int, fps: float, window: float, stride: float) -> list[tuple[int, int]]:
    """Frame ranges ``[lo, hi)`` of the windows over a video of ``total`` frames at ``fps``.

    Windows of ``window`` seconds start every ``stride`` seconds; the last one ends at the end of
    the video (it may be shorter); a video shorter than one window gives one window over all of it.
    """
    duration = total / fps
    out: list[tuple[int, int]] = []
    k = 0
    while True:
        start = k * stride
        if start >= duration - 1e-9 and out:
            break
        lo = min(int(round(start * fps)), total - 1)
        hi = max(lo + 1, min(int(round((start + window) * fps)), total))
        out.append((lo, hi))
        if hi >= total:
            break
        k += 1
    return out
