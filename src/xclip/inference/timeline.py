"""Timelines of long videos: the time windows that are each classified like a whole video."""

from __future__ import annotations

import math

from xclip.errors import InputError

__all__ = ["MAX_WINDOWS", "TimelineError", "check_window", "frame_windows"]

# The most windows one video may have unless the caller raises the limit: a window or stride of
# one frame over an hour of video is 100,000 windows, hours of compute that nobody asked for.
MAX_WINDOWS = 10_000


class TimelineError(InputError):
    """Windows that cannot be run over a video: a window or stride shorter than one frame
    (``reason`` ``"window"`` / ``"stride"``), or more windows than allowed (``"count"``). The
    fields let a caller word the fix in its own terms (the command line names its options)."""

    def __init__(
        self,
        source: str,
        reason: str,
        *,
        window: float,
        stride: float,
        fps: float,
        count: int = 0,
        limit: int = 0,
    ) -> None:
        self.source, self.reason = source, reason
        self.window, self.stride, self.fps = window, stride, fps
        self.count, self.limit = count, limit
        super().__init__(self.explain())

    def explain(
        self, window: str = "window", stride: str = "stride", limit: str = "max_windows"
    ) -> str:
        """The message, with the names of the window, stride and limit settings given."""
        if self.reason == "count":
            return (
                f"{self.source}: {window} {self.window:g} s and {stride} {self.stride:g} s give "
                f"{self.count} windows, more than {limit}={self.limit}; choose a longer "
                f"{window}/{stride}, or set {limit}={self.count} to run them all"
            )
        value = self.window if self.reason == "window" else self.stride
        name = window if self.reason == "window" else stride
        return (
            f"{self.source}: {name} {value:g} s is shorter than one frame "
            f"({1 / self.fps:.4g} s at {self.fps:g} fps); use at least {1 / self.fps:.4g} s"
        )

    def __reduce__(self):
        return (
            _rebuild,
            (self.source, self.reason, self.window, self.stride, self.fps, self.count, self.limit),
        )


def _rebuild(source, reason, window, stride, fps, count, limit) -> TimelineError:  # noqa: ANN001
    return TimelineError(
        source, reason, window=window, stride=stride, fps=fps, count=count, limit=limit
    )


def check_window(window: float, stride: float) -> None:
    """``InputError`` unless ``window`` and ``stride`` are finite numbers of seconds > 0."""
    for name, value in (("window", window), ("stride", stride)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise InputError(f"{name} must be a finite number of seconds > 0, got {value}")


def frame_windows(
    total: int,
    fps: float,
    window: float,
    stride: float,
    *,
    max_windows: int | None = None,
    source: str = "<video>",
) -> list[tuple[int, int]]:
    """Frame ranges ``[lo, hi)`` of the windows over a video of ``total`` frames at ``fps``.

    Windows of ``window`` seconds start every ``stride`` seconds; the last one ends at the end of
    the video (it may be shorter); a video shorter than one window gives one window over all of it.
    A window or stride shorter than one frame, or more than ``max_windows`` windows (``None``: no
    limit), raise :class:`TimelineError` (naming ``source``) before anything runs.
    """
    check_window(window, stride)
    # below one frame, windows repeat the same frames (rounding): never what was meant
    for reason, value in (("window", window), ("stride", stride)):
        if value * fps < 1 - 1e-6:
            raise TimelineError(source, reason, window=window, stride=stride, fps=fps)
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
    if max_windows is not None and len(out) > max_windows:
        raise TimelineError(
            source, "count", window=window, stride=stride, fps=fps, count=len(out),
            limit=max_windows,
        )  # fmt: skip
    return out
