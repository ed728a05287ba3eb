"""The bounded ring of decoded frames between a stream's reader thread and the model.

The reader puts frames in as they are decoded; the model takes the frames of one time window at a
time. Nothing queues without bound: the ring keeps at most ``horizon`` seconds of the stream and
at most ``max_frames`` frames.

- **live** (a camera, a network stream, a file paced at its frame rate): :meth:`FrameRing.put`
  never waits. The oldest frames fall out; a model that falls behind finds the windows it did not
  reach gone, and skips them (:class:`~xclip.live.watcher.Watcher` counts them). Latency stays
  bounded by the horizon.
- **lossless** (a file read as fast as possible): :meth:`FrameRing.put` waits while the ring
  spans ``horizon`` seconds, until the model :meth:`~FrameRing.release`-s the frames it is done
  with. Every window is classified; decoding runs only as far ahead as the ring allows.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["Frame", "FrameRing"]


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``time`` in seconds on the stream's clock (0 = the first frame),
    ``arrival`` the ``time.monotonic()`` at which it entered the ring, ``image`` uint8
    ``[H, W, 3]`` RGB."""

    time: float
    arrival: float
    image: np.ndarray


class FrameRing:
    """Frames in stream order, bounded in time (``horizon`` seconds) and count (``max_frames``).

    Thread-safe: one producer (:meth:`put`, :meth:`close`) and any number of readers.
    ``dropped`` counts frames that fell out unread because of the frame cap (lossless) or the
    horizon (live; frames the model had already taken are not counted once released)."""

    def __init__(self, horizon: float, *, lossless: bool = False, max_frames: int = 2048) -> None:
        if not horizon > 0:
            raise ValueError(f"horizon must be > 0 seconds, got {horizon}")
        if max_frames < 2:
            raise ValueError(f"max_frames must be >= 2, got {max_frames}")
        self.horizon = float(horizon)
        self.lossless = lossless
        self.max_frames = max_frames
        self.dropped = 0
        self._frames: deque[Frame] = deque()
        self._released = float("-inf")  # frames before this time were used by the model
        self._closed = False
        self._cond = threading.Condition()

    # -- the producer ---------------------------------------------------------------------------
    def put(self, time_s: float, image: np.ndarray, stop: threading.Event | None = None) -> bool:
        """Add the frame at ``time_s`` (stream clock, increasing); its arrival is now. Lossless:
        waits while the ring spans the horizon (``stop`` set or :meth:`close` ends the wait).
        False when the ring is closed (the frame is not added)."""
        with self._cond:
            if self.lossless:
                while (
                    not self._closed
                    and self._frames
                    and time_s - self._frames[0].time >= self.horizon
                    and not (stop is not None and stop.is_set())
                ):
                    self._cond.wait(0.1)
            if self._closed:
                return False
            self._frames.append(Frame(time_s, time.monotonic(), image))
            while self._frames and (
                len(self._frames) > self.max_frames
                or (not self.lossless and time_s - self._frames[0].time >= self.horizon)
            ):
                old = self._frames.popleft()
                if old.time >= self._released:
                    self.dropped += 1
            self._cond.notify_all()
            return True

    def close(self) -> None:
        """No more frames will come (the source ended or the reader stopped)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- the consumer ---------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def latest(self) -> Frame | None:
        """The newest frame, or None when the ring is empty."""
        with self._cond:
            return self._frames[-1] if self._frames else None

    def wait_for(self, time_s: float, timeout: float) -> Frame | None:
        """Wait up to ``timeout`` seconds for a frame at or after ``time_s``; the newest frame
        then (it may be earlier when the wait timed out or the ring closed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed and (not self._frames or self._frames[-1].time < time_s):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._frames[-1] if self._frames else None

    def window(self, start: float, end: float) -> list[Frame]:
        """The frames with ``start <= time < end``, in order."""
        with self._cond:
            return [f for f in self._frames if start <= f.time < end]

    def release(self, before: float) -> None:
        """The model is done with the frames before ``before``: they go (lossless: the reader
        may decode further)."""
        with self._cond:
            self._released = max(self._released, before)
            while self._frames and self._frames[0].time < before:
                self._frames.popleft()
            self._cond.notify_all()
