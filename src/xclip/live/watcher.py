"""Open-vocabulary recognition on a live source: windows every stride, events as they happen.

>>> clf = VideoClassifier(model, ["someone waving", "nobody there"])
>>> w = Watcher(clf, "rtsp://camera/stream", window=2.0, stride=0.5)
>>> w.subscribe(print)                 # WindowResult, Segment and SourceEvent objects
>>> w.run()                            # until the source ends (or w.stop() from another thread)

How it keeps up (docs/live.md): a :class:`~xclip.live.stream.StreamReader` decodes in its own
thread into a bounded :class:`~xclip.live.ring.FrameRing`. The model takes window ``k``
(``[k * stride, k * stride + window)`` on the stream's clock) once its last frame has arrived.
On a live source, when several windows are complete by the time the model is free, it takes the
newest and counts the others as **skipped**: the model never works through a backlog, so latency
does not grow. A file read as fast as possible (lossless) skips nothing: decoding waits for the
model instead.

Each window gives a :class:`WindowResult`: the window's times, every label ranked with its
probability (the classifier's :meth:`~xclip.inference.VideoClassifier.predict`, on ``T`` frames
sampled from the window as a whole video's are), and the **latency** from the arrival of the
window's last frame in the ring to the result. The probabilities feed a
:class:`~xclip.live.segments.Segmenter`, whose :class:`~xclip.live.segments.Segment` events are
published too.

The labels can change while the stream runs (:meth:`Watcher.set_labels`, from any thread): the
new set's text features are computed by the model's thread before the next window, and the
segments of labels no longer asked for end there.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xclip.errors import InputError

from ..inference.classifier import VideoClassifier
from ..inference.labels import check_labels
from ..inference.processor import PreparedVideo
from .ring import Frame, FrameRing
from .segments import Segment, Segmenter, window_slot
from .stream import SourceEvent, StreamReader, source_kind

logger = logging.getLogger(__name__)

__all__ = ["LabelsChanged", "LiveSourceError", "WatchStats", "Watcher", "WindowResult"]


class LiveSourceError(InputError):
    """The source gave no frame at all (unreachable, not a video, silent): one line."""


@dataclass(frozen=True)
class LabelsChanged:
    """The labels in use from window ``index`` on."""

    labels: tuple[str, ...]
    index: int

    def as_row(self) -> dict[str, Any]:
        return {"type": "labels", "labels": list(self.labels), "from_window": self.index}


@dataclass(frozen=True)
class WindowResult:
    """One window: ``index`` (``start = index * stride``), ``start``/``end`` on the stream's
    clock, ``labels``/``probs`` every label ranked best first, ``latency`` seconds from the
    arrival of the window's last frame to this result, ``frames`` the frames the window held,
    ``skipped`` the windows skipped so far (the model was busy, or the stream sent no frame in
    them), ``timings`` seconds per stage (``sample``,
    ``preprocess``, ``model``), ``wall`` the Unix time of the result."""

    index: int
    start: float
    end: float
    labels: tuple[str, ...]
    probs: tuple[float, ...]
    latency: float
    frames: int
    skipped: int
    timings: dict[str, float] = field(default_factory=dict)
    wall: float = field(default_factory=time.time)

    @property
    def scores(self) -> dict[str, float]:
        """Each label's probability."""
        return dict(zip(self.labels, self.probs, strict=True))

    def as_row(self, top_k: int | None = 5) -> dict[str, Any]:
        """The JSON row (``top_k`` None or 0: every label)."""
        n = top_k or len(self.labels)
        return {
            "type": "window", "index": self.index,
            "start": round(self.start, 3), "end": round(self.end, 3),
            "predictions": [{"label": lb, "prob": round(p, 6)}
                            for lb, p in zip(self.labels[:n], self.probs[:n], strict=True)],
            "latency": round(self.latency, 4), "frames": self.frames, "skipped": self.skipped,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "wall": round(self.wall, 3),
        }  # fmt: skip


# what subscribers receive
Event = WindowResult | Segment | SourceEvent | LabelsChanged


@dataclass
class WatchStats:
    """What a watch did: windows classified and skipped, latencies (seconds), the model's busy
    time, the source's frames, corrupt packets and reconnects, and why it ended."""

    windows: int = 0
    skipped: int = 0
    latencies: list[float] = field(default_factory=list)
    busy: float = 0.0  # seconds the model thread spent on windows
    stream_seconds: float = 0.0  # the stream's clock at the last window's end
    frames: int = 0
    decode_seconds: float = 0.0  # the reader thread's decoding and scaling
    dropped_frames: int = 0
    corrupt_packets: int = 0
    reconnects: int = 0
    ended: str = ""  # "end", "duration", "stopped", "source lost"
    error: str | None = None

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies, q)) if self.latencies else None

    def as_dict(self) -> dict[str, Any]:
        p50, p95 = self.percentile(50), self.percentile(95)
        return {
            "windows": self.windows, "skipped": self.skipped,
            "latency_p50": p50, "latency_p95": p95,
            "latency_max": max(self.latencies) if self.latencies else None,
            "busy_seconds": self.busy, "stream_seconds": self.stream_seconds,
            "frames": self.frames, "decode_seconds": self.decode_seconds,
            "dropped_frames": self.dropped_frames,
            "corrupt_packets": self.corrupt_packets, "reconnects": self.reconnects,
            "ended": self.ended, "error": self.error,
        }  # fmt: skip


class Watcher:
    """Recognition on a live source with a :class:`~xclip.inference.VideoClassifier`.

    Args:
        classifier: the model, its preprocessing and the initial labels (its ``labels`` and
            template); one view per window (its ``num_clips``/``num_crops`` are used as they are).
        source: a file, URL, device or ``-`` (:func:`~xclip.live.stream.source_kind`).
        window, stride: seconds; the window's ``T`` frames are the model's.
        realtime: pace a file at its frame rate (a file is otherwise read losslessly, as fast as
            the model takes it).
        timeout: seconds without a frame before a live source is given up (reconnects
            included).
        threshold, release, min_duration: the :class:`~xclip.live.segments.Segmenter`'s.
        duration: stop after this many seconds of the stream's clock (None: at its end).
        options, input_format: FFmpeg's input options and demuxer name.

    Use :meth:`run` in the calling thread, or :meth:`start` / :meth:`stop` for a background
    thread (a server). Events go to the callbacks of :meth:`subscribe`, in the model's thread.
    """

    def __init__(
        self,
        classifier: VideoClassifier,
        source: str,
        *,
        window: float = 2.0,
        stride: float = 0.5,
        realtime: bool = False,
        timeout: float = 10.0,
        threshold: float = 0.5,
        release: float | None = None,
        min_duration: float = 0.0,
        duration: float | None = None,
        options: Mapping[str, str] | None = None,
        input_format: str | None = None,
    ) -> None:
        for name, v in (("window", window), ("stride", stride)):
            if not (math.isfinite(v) and v > 0):
                raise InputError(f"{name} must be > 0 seconds, got {v}")
        if duration is not None and not duration > 0:
            raise InputError(f"duration must be > 0 seconds, got {duration}")
        self.classifier = classifier
        self.window, self.stride = float(window), float(stride)
        self.duration = duration
        self.segmenter = Segmenter(threshold, release, min_duration)
        self._labels = tuple(classifier.labels)
        self._pending: tuple[str, ...] | None = None
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Event], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = WatchStats()
        lossless = not realtime and source_kind(source, input_format) == "file"
        # the ring holds a window, the stride the model may be late by, and a second to spare
        self.ring = FrameRing(self.window + self.stride + 1.0, lossless=lossless)
        self.reader = StreamReader(
            source, self.ring, realtime=realtime, timeout=timeout, options=options,
            input_format=input_format, short_side=classifier.processor.transform.resize_short,
            on_event=self._publish,
        )  # fmt: skip
        self.source = source
        self.timeout = float(timeout)
        self._started = time.monotonic()

    # -- what the page or a service drives ------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        """The labels in use (a pending change is applied before the next window)."""
        with self._lock:
            return self._pending or self._labels

    def set_labels(self, labels: Sequence[str]) -> None:
        """Use ``labels`` from the next window on (checked here: ``InputError`` for an empty
        list, a duplicate or an empty text)."""
        checked = tuple(check_labels(labels))
        with self._lock:
            self._pending = checked

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for each :class:`WindowResult`, :class:`Segment`,
        :class:`~xclip.live.stream.SourceEvent` and :class:`LabelsChanged`; returns the function
        that unsubscribes. Callbacks run in the model's or the reader's thread: keep them short
        (a server hands the event to its event loop with ``call_soon_threadsafe``)."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def latest_frame(self) -> Frame | None:
        """The newest decoded frame (scaled as the model's preprocessing would), or None."""
        return self.ring.latest()

    def start(self) -> None:
        """Run :meth:`run` in a background thread."""
        self._thread = threading.Thread(target=self._run_quietly, name="xclip-live", daemon=True)
        self._thread.start()

    def stop(self, wait: float = 5.0) -> None:
        """Stop: the open segments are flushed (published) by the model's thread."""
        self._stop.set()
        self.reader.stop(wait=0)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait)

    def _run_quietly(self) -> None:
        try:
            self.run()
        except LiveSourceError as e:
            self.stats.error = str(e)
            logger.error("%s", e)
        except Exception as e:  # a background thread has no caller to raise to
            self.stats.ended, self.stats.error = "failed", f"{type(e).__name__}: {e}"
            logger.exception("%s: the watcher failed", self.source)

    # -- the model's loop -----------------------------------------------------------------------
    def _publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for cb in subscribers:
            cb(event)

    def run(self) -> WatchStats:
        """Watch until the source ends, ``duration`` is reached, or :meth:`stop`; flush the open
        segments; return the stats (``stats.ended`` says why it ended: ``"end"``,
        ``"duration"``, ``"stopped"``, ``"source lost"`` with ``stats.error``). A source that
        never gave a frame raises :class:`LiveSourceError`. A ``KeyboardInterrupt`` (or any
        exception) in the loop stops the reader and flushes the open segments before it
        propagates."""
        self._started = time.monotonic()
        self.reader.start()
        try:
            self._loop()
        finally:
            self.reader.stop(wait=0)
            for seg in self.segmenter.flush():
                self._publish(seg)
            s = self.stats
            s.frames, s.dropped_frames = self.reader.frames, self.ring.dropped
            s.decode_seconds = self.reader.decode_seconds
            s.corrupt_packets, s.reconnects = self.reader.corrupt_packets, self.reader.reconnects
        if s.ended == "source lost" and s.frames == 0:
            raise LiveSourceError(f"{self.source}: {s.error}")
        return s

    def _loop(self) -> None:
        s = self.stats
        k = 0
        done_any = False
        while True:
            if self._stop.is_set():
                s.ended = "stopped"
                return
            start = k * self.stride
            end = start + self.window
            if self.duration is not None and end > self.duration + 1e-9:
                s.ended = "duration"
                return
            ready_at = end - self._frame_dt() - 1e-6  # the time of the window's last frame
            latest = self.ring.wait_for(ready_at, timeout=0.1)
            if latest is None or latest.time < ready_at:
                if not self.ring.closed:
                    # a reader stuck in a read FFmpeg does not time out (a pipe): given up here
                    if self._silent_for() > self.timeout + 3.0:
                        s.ended, s.error = "source lost", self._silence_message()
                        return
                    continue
                if self.reader.error is None and not done_any and latest is not None:
                    # a source shorter than one window: one window over all of it
                    self._classify(k, 0.0, latest.time + self._frame_dt(), skipped=0)
                    done_any = True
                s.ended = "end" if self.reader.error is None else "source lost"
                s.error = self.reader.error
                return
            if not self.ring.lossless:
                # the newest complete window: the model never works through a backlog
                newest = math.floor((latest.time + self._frame_dt() - self.window) / self.stride
                                    + 1e-6)  # fmt: skip
                if self.duration is not None:  # the last window within the duration
                    last = math.floor((self.duration - self.window) / self.stride + 1e-6)
                    newest = min(newest, max(last, k))
                if newest > k:
                    s.skipped += newest - k
                    k = newest
                    start, end = k * self.stride, k * self.stride + self.window
            self._classify(k, start, end, skipped=s.skipped)
            done_any = True
            k += 1

    def _frame_dt(self) -> float:
        """A frame's duration: the frame at ``t`` covers ``[t, t + dt)``, so a window is complete
        once the frame before its end has arrived (not only the one after it)."""
        fps = self.reader.fps
        return 1.0 / fps if fps and fps > 0 else 0.0

    def _silent_for(self) -> float:
        last = self.ring.latest()
        since = last.arrival if last is not None else self._started
        return time.monotonic() - since

    def _silence_message(self) -> str:
        what = "no frames" if self.reader.frames == 0 else "no more frames"
        last = f" (last error: {self.reader.last_error})" if self.reader.last_error else ""
        return f"{what} for {self.timeout:g} s{last}"

    def _apply_labels(self, index: int) -> tuple[str, ...]:
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is None or pending == self._labels:
                return self._labels
            self._labels = pending
        self.classifier.text_features(pending)  # encoded now, cached for predict()
        for seg in self.segmenter.flush(k for k in self.segmenter.open_labels if k not in pending):
            self._publish(seg)
        logger.info("labels changed from window %d: %s", index, ", ".join(pending))
        self._publish(LabelsChanged(pending, index))
        return pending

    def _classify(self, k: int, start: float, end: float, *, skipped: int) -> None:
        labels = self._apply_labels(k)
        frames = self.ring.window(start, end)
        self.ring.release(start + self.stride)  # what no later window needs
        if not frames:  # a gap in the stream (an outage): nothing to classify, counted
            self.stats.skipped += 1
            return
        t0 = time.perf_counter()
        shape = frames[-1].image.shape  # a window across a change of resolution: the new one
        frames = [f for f in frames if f.image.shape == shape]
        idx = self.classifier.sample_indices(len(frames))  # [num_clips, T]
        clip = np.stack([frames[i].image for i in idx.reshape(-1)])
        clip = clip.reshape(*idx.shape, *shape)  # [num_clips, T, H, W, 3]
        t1 = time.perf_counter()
        clips = self.classifier.preprocess(clip)
        t2 = time.perf_counter()
        prepared = PreparedVideo(self.source, clips, idx, start=start, end=end)
        pred = self.classifier.predict(prepared, labels)
        done = time.monotonic()
        t3 = time.perf_counter()
        result = WindowResult(
            index=k, start=start, end=end, labels=pred.labels, probs=pred.probs,
            latency=done - frames[-1].arrival, frames=len(frames), skipped=skipped,
            timings={"sample": t1 - t0, "preprocess": t2 - t1, "model": t3 - t2},
        )  # fmt: skip
        s = self.stats
        s.windows += 1
        s.latencies.append(result.latency)
        s.busy += t3 - t0
        s.stream_seconds = end
        self._publish(result)
        for seg in self.segmenter.update(*window_slot(start, end, self.stride), result.scores):
            self._publish(seg)
