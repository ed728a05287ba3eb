"""A live source decoded in its own thread into a :class:`~xclip.live.ring.FrameRing`.

What a source is, from its spelling (:func:`source_kind`):

- ``scheme://...`` (``rtsp``, ``rtmp``, ``srt``, ``udp``, ``tcp``, ``http(s)``, HLS ``.m3u8``
  over HTTP): a **network** stream, opened by FFmpeg (through PyAV);
- ``/dev/video*`` (Linux, v4l2) or a name with ``input_format`` (``avfoundation`` on macOS,
  ``dshow`` on Windows): a **device**;
- ``-``: a **pipe** on stdin (a container FFmpeg can read as it comes: MPEG-TS, Matroska, ...);
- anything else: a **file**, read as fast as the model takes it, or paced at its own frame rate
  (``realtime=True``) as if it were a camera.

Network streams and devices are reconnected when they drop, with exponential backoff (0.5 s
doubling up to 5 s); each reconnect is logged. A source that sends no frame for ``timeout``
seconds, reconnects included, ends the reader with :attr:`StreamReader.error` set. A packet the
decoder refuses is skipped and counted (:attr:`StreamReader.corrupt_packets`). Files and pipes
end at their end.

The stream's clock starts at 0 with the first frame and only goes forward: a source that
restarts its timestamps (a reconnect, a writer restarted, an MPEG-TS discontinuity) continues
the clock by the wall time that passed. Frames are scaled down on decoding so that their short
side is at most ``short_side`` pixels (what the model's preprocessing resizes to anyway), which
bounds the ring's memory.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

from xclip.errors import InputError

from .ring import FrameRing

logger = logging.getLogger(__name__)

__all__ = [
    "BACKOFF",
    "SourceEvent",
    "SourceKind",
    "StreamReader",
    "source_kind",
]

SourceKind = str  # "network", "device", "pipe" or "file"

# seconds before each reconnect: doubling from the first, capped at the last
BACKOFF = (0.5, 5.0)
# a timestamp jump larger than this (forward, beyond the wall time that passed) is a discontinuity
_MAX_JUMP = 5.0


def source_kind(source: str, input_format: str | None = None) -> SourceKind:
    """``"network"``, ``"device"``, ``"pipe"`` or ``"file"`` (see the module doc)."""
    if source == "-":
        return "pipe"
    if "://" in source:
        return "network"
    if input_format in ("v4l2", "video4linux2", "avfoundation", "dshow") or source.startswith(
        "/dev/video"
    ):
        return "device"
    return "file"


@dataclass(frozen=True)
class SourceEvent:
    """Something that happened to the source: ``kind`` is ``"connected"`` (``info``: codec, size,
    frame rate), ``"disconnected"`` (``reason``), ``"reconnecting"`` (``info``: attempt, delay in
    seconds) or ``"ended"`` (``reason``: None at the end of a file or pipe)."""

    kind: str
    source: str
    reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    wall: float = field(default_factory=time.time)

    def as_row(self) -> dict[str, Any]:
        return {"type": "source", "event": self.kind, "source": self.source,
                "reason": self.reason, **self.info, "wall": round(self.wall, 3)}  # fmt: skip


def _describe(e: BaseException) -> str:
    if isinstance(e, av.error.ExitError):  # FFmpeg's interrupt callback: our timeout
        return "timed out waiting for data"
    if isinstance(e, av.error.ProtocolNotFoundError):
        return (
            "the FFmpeg in PyAV was built without this protocol (srt:// needs libsrt); an "
            "FFmpeg that has it can pipe the stream in: ffmpeg -i URL -c copy -f mpegts - | "
            "xclip-video watch - ..."
        )
    if isinstance(e, av.error.FFmpegError) and e.strerror:
        return str(e.strerror)
    return str(e) or type(e).__name__


class StreamReader:
    """Decodes ``source`` in a daemon thread into ``ring`` (see the module doc).

    Args:
        source: what to open (:func:`source_kind`).
        ring: where the frames go.
        realtime: a file is paced at its own frame rate (its timestamps) instead of read as fast
            as the ring takes it.
        timeout: seconds without a frame (opening, reading, reconnecting) before the reader
            gives up on a network stream or a device.
        options: FFmpeg options of the input (``{"rtsp_transport": "tcp"}``, ...).
        input_format: FFmpeg's demuxer name when it cannot be guessed (``v4l2``,
            ``avfoundation``, ``dshow``, ``mpegts`` for a pipe, ...).
        short_side: decoded frames are scaled down to this short side (None: as decoded).
        on_event: called with each :class:`SourceEvent`, in the reader's thread.

    After :meth:`start`, the ring fills until the source ends or :meth:`stop`; then the ring is
    closed and :attr:`error` says why it ended (None: the end of a file or pipe, or a stop).
    """

    def __init__(
        self,
        source: str,
        ring: FrameRing,
        *,
        realtime: bool = False,
        timeout: float = 10.0,
        options: Mapping[str, str] | None = None,
        input_format: str | None = None,
        short_side: int | None = None,
        on_event: Callable[[SourceEvent], None] | None = None,
    ) -> None:
        if not timeout > 0:
            raise InputError(f"timeout must be > 0 seconds, got {timeout}")
        self.source = source
        self.kind = source_kind(source, input_format)
        if self.kind == "file" and not os.path.isfile(source):
            what = "a folder" if os.path.isdir(source) else "not found"
            raise InputError(
                f"{source}: {what}; a source is a video file, a URL (rtsp://, udp://, "
                "http://, ...), a device (/dev/video0) or - for stdin"
            )
        self.ring = ring
        self.realtime = realtime
        self.timeout = float(timeout)
        self.options = dict(options or {})
        self.input_format = input_format or ("v4l2" if source.startswith("/dev/video") else None)
        self.short_side = short_side
        self.on_event = on_event
        self.frames = 0
        self.corrupt_packets = 0
        self.decode_seconds = 0.0  # spent decoding and converting frames (this thread's work)
        self.reconnects = 0
        self.error: str | None = None  # why the reader gave up (None: ended or stopped)
        self.last_error: str | None = None  # the last failure to open or read
        self.fps: float | None = None  # the stream's nominal frame rate, when it says
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clock_offset: float | None = None  # stream clock = frame time + offset
        self._last_time = -math.inf  # the stream clock of the last frame
        self._last_arrival = 0.0
        self._got_frames = 0  # frames of the current connection

    @property
    def live(self) -> bool:
        """Whether the source is reconnected when it drops (network streams and devices)."""
        return self.kind in ("network", "device")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="xclip-live-reader", daemon=True)
        self._thread.start()

    def stop(self, wait: float = 1.0) -> None:
        """Stop reading (a read blocked in FFmpeg ends within its timeout; the thread is a
        daemon, so waiting is bounded by ``wait``)."""
        self._stop.set()
        self.ring.close()
        if self._thread is not None:
            self._thread.join(wait)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the thread -----------------------------------------------------------------------------
    def _emit(self, kind: str, reason: str | None = None, **info: Any) -> None:
        if self.on_event is not None:
            self.on_event(SourceEvent(kind, self.source, reason, info))

    def _open(self, last_frame_at: float) -> av.container.InputContainer:
        kwargs: dict[str, Any] = {"options": self.options}
        if self.input_format:
            kwargs["format"] = self.input_format
        if self.live:
            # FFmpeg's interrupt callback: an open or a read that waits longer than this fails;
            # an open may take what is left of the timeout since the last frame
            left = last_frame_at + self.timeout - time.monotonic()
            kwargs["timeout"] = (max(left, 0.5), self.timeout)
        target = "pipe:0" if self.kind == "pipe" else self.source
        return av.open(target, "r", **kwargs)

    def _run(self) -> None:
        last_frame_at = time.monotonic()
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    container = self._open(last_frame_at)
                except (av.error.FFmpegError, OSError, ValueError) as e:
                    reason = self._failed(e)
                    # no retry helps a protocol or a demuxer this FFmpeg does not have
                    fatal = isinstance(e, av.error.ProtocolNotFoundError) or not isinstance(
                        e, av.error.FFmpegError | OSError
                    )
                    if fatal or not self.live:
                        self.error = f"cannot open: {reason}"
                        return
                    attempt = self._backoff(attempt, reason, last_frame_at)
                    if attempt < 0:
                        return
                    continue
                with container:
                    try:
                        self._read(container)
                        reason = "end of stream"
                    except (av.error.FFmpegError, OSError) as e:
                        reason = self._failed(e)
                if self._got_frames:
                    last_frame_at = self._last_arrival
                    attempt = 0
                if not self.live or self._stop.is_set():
                    if not self.live and reason != "end of stream":
                        self.error = f"read failed: {reason}"
                    return
                logger.warning("%s: disconnected (%s)", self.source, reason)
                self._emit("disconnected", reason)
                attempt = self._backoff(attempt, reason, last_frame_at)
                if attempt < 0:
                    return
        except Exception as e:  # a bug or an unexpected library error: the watcher reports it
            logger.exception("%s: the reader failed", self.source)
            self.error = f"the reader failed: {type(e).__name__}: {e}"
        finally:
            self.ring.close()
            self._emit("ended", self.error)

    def _failed(self, e: BaseException) -> str:
        """Why an open or a read failed; kept as :attr:`last_error`, unless it is only a timeout
        after a more telling failure (a reconnect that timed out while probing garbage)."""
        reason = _describe(e)
        if not (isinstance(e, av.error.ExitError) and self.last_error):
            self.last_error = reason
        return reason

    def _backoff(self, attempt: int, reason: str, last_frame_at: float) -> int:
        """Sleep before the next connection attempt; -1 (and :attr:`error` set) when the timeout
        since the last frame is spent."""
        left = last_frame_at + self.timeout - time.monotonic()
        if left <= 0:
            what = "no frames" if self.frames == 0 else "no more frames"
            self.error = f"{what} for {self.timeout:g} s (last error: {self.last_error or reason})"
            return -1
        delay = min(BACKOFF[0] * 2**attempt, BACKOFF[1], left)
        self.reconnects += 1
        logger.warning(
            "%s: reconnecting in %.1f s (attempt %d: %s)",
            self.source, delay, attempt + 1, reason,
        )  # fmt: skip
        self._emit("reconnecting", reason, attempt=attempt + 1, delay=round(delay, 3))
        if self._stop.wait(delay):
            return -1
        return attempt + 1

    def _read(self, container: av.container.InputContainer) -> int:
        """Decode one connection's frames into the ring; the number of frames."""
        self._got_frames = 0
        streams = container.streams.video
        if not streams:
            raise av.error.InvalidDataError(1094995529, "no video stream", self.source)
        stream = streams[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else self.fps
        cc = stream.codec_context
        self._emit("connected", None, codec=cc.name, width=cc.width, height=cc.height,
                   fps=round(self.fps, 3) if self.fps else None)  # fmt: skip
        logger.info(
            "%s: %s %dx%d at %s fps", self.source, cc.name, cc.width, cc.height,
            f"{self.fps:.3g}" if self.fps else "?",
        )  # fmt: skip
        start_wall = start_time = None
        self._clock_offset = None  # a new connection: its timestamps may start anywhere
        for packet in container.demux(stream):
            if self._stop.is_set():
                break
            t0 = time.perf_counter()
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                self.corrupt_packets += 1
                continue
            self.decode_seconds += time.perf_counter() - t0
            for frame in frames:
                t = self._clock(frame)
                if self.realtime:
                    if start_wall is None:
                        start_wall, start_time = time.monotonic(), t
                    wait = start_wall + (t - start_time) - time.monotonic()
                    if wait > 0 and self._stop.wait(wait):
                        return self._got_frames
                t0 = time.perf_counter()
                image = self._image(frame)
                self.decode_seconds += time.perf_counter() - t0
                if not self.ring.put(t, image, self._stop):
                    return self._got_frames
                self.frames += 1
                self._got_frames += 1
                self._last_arrival = time.monotonic()
        return self._got_frames

    def _clock(self, frame: av.VideoFrame) -> float:
        now = time.monotonic()
        raw = frame.time
        if raw is None:  # no timestamps (raw pipes): the wall clock
            raw = now
        if self._clock_offset is None:
            # the first frame of a connection: continue the clock by the wall time that passed
            t = 0.0 if self.frames == 0 else self._last_time + max(now - self._last_arrival, 1e-3)
            self._clock_offset = t - raw
        t = raw + self._clock_offset
        jump = t - self._last_time
        if self.frames and (jump <= 0 or jump > _MAX_JUMP + (now - self._last_arrival)):
            # timestamps went back or leapt: a discontinuity, not time that passed
            t = self._last_time + max(now - self._last_arrival, 1e-3)
            self._clock_offset = t - raw
        self._last_time = t
        return t

    def _image(self, frame: av.VideoFrame) -> np.ndarray:
        w, h = frame.width, frame.height
        s = self.short_side
        if s and min(w, h) > s:
            scale = s / min(w, h)
            w, h = max(2, round(w * scale)), max(2, round(h * scale))
            return frame.to_ndarray(format="rgb24", width=w, height=h)
        return frame.to_ndarray(format="rgb24")
