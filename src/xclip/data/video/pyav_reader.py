"""The PyAV backend: keyframe-aware, frame-exact decoding (the default; PyAV is always installed).

The reader demuxes the file once without decoding into a :class:`FrameIndex` (frame ``i`` is the
frame with the ``i``-th smallest presentation timestamp; its keyframes). To read a set of frames
it seeks only when the keyframe of the next wanted frame lies ahead of the current decode
position and otherwise decodes forward, so 8 frames of a long clip never cost a full decode, and
a long GOP never costs one seek per frame. Packets are decoded one by one and FFmpeg errors are
caught, so truncated or partly garbled files give every frame that can be decoded; frames whose
data is known to be damaged raise instead of coming back concealed (``strict=True``).

Files from strangers (``untrusted=True``, used by the local server) are opened with FFmpeg limited
to the one file or buffer given and to real video containers (:data:`UNTRUSTED_FORMATS`): a
playlist (HLS ``.m3u8``, ``ffconcat``) or any other format that opens further files or URLs is
refused before it reads anything else.
"""

from __future__ import annotations

import contextlib
import errno
import io
import time
from collections import deque
from typing import Any

import numpy as np

from xclip.data.video.errors import VideoDecodeError, VideoTooLargeError
from xclip.data.video.frame_index import FrameIndex, FrameIndexBuilder
from xclip.data.video.reader import (
    VideoMetadata,
    VideoReader,
    VideoSource,
    normalise_rotation,
    normalise_source,
)
from xclip.data.video.watchdog import decode_watchdog

__all__ = ["UNTRUSTED_FORMATS", "PyAVReader"]

# FFmpeg demuxers of the containers in VIDEO_EXTENSIONS (and raw video streams, which hold one
# stream and nothing else). Not here, on purpose: hls, dash, concat, image2 and every other
# demuxer that opens further files or URLs named inside the file it reads.
UNTRUSTED_FORMATS: tuple[str, ...] = (
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2",  # one FFmpeg demuxer: "mov,mp4,m4a,3gp,3g2,mj2"
    "matroska", "webm", "avi", "mpeg", "mpegts", "mpegvideo", "asf", "flv", "ogg", "gif",
    "h264", "hevc", "m4v",
)  # fmt: skip


class PyAVReader(VideoReader):
    """Keyframe-aware, frame-exact PyAV reader.

    Args:
        source: path, ``bytes`` or a seekable binary file-like object (e.g. a tar member).
        num_threads: FFmpeg decoding threads (1 in DataLoader workers; 0 = FFmpeg's choice).
        thread_type: ``"SLICE"``, ``"FRAME"`` or ``"AUTO"`` (used when ``num_threads != 1``).
        timeout: seconds; limits each I/O stall (PyAV's open/read timeout) and the total time of
            each ``open``/``get_frames`` call, checked between packets -> ``VideoDecodeError``.
        watchdog: seconds; hard limit per call via :func:`decode_watchdog` (kills the process).
        apply_rotation: rotate frames upright according to the display matrix (as players do).
        skip_nonref: let the decoder skip non-reference frames that are not requested while
            decoding forward (they are never needed to decode other frames, so results stay
            exact; about 10-15 % faster on x264 streams with B-frames).
        strict: make FFmpeg fail on bitstream errors (``err_detect=explode``, no error
            concealment) so that damaged frames raise instead of coming back concealed. Frames
            are also refused when their packet was cut short (truncated file), failed to decode,
            directly precedes a packet that failed, or follows one in the same GOP. Damage that
            FFmpeg cannot detect (h264 has no checksums) can still give damaged frames.
            ``strict=False`` keeps FFmpeg's default concealment.
        name: path used in error messages (for bytes / file-like sources).
        max_errors: consecutive FFmpeg errors tolerated before the rest of the file is
            considered undecodable.
        untrusted: the file comes from someone else (an upload, a shared folder): FFmpeg may
            read only ``source`` itself (the ``file`` protocol for a path, no protocol at all
            for bytes or file objects) and only the containers of :data:`UNTRUSTED_FORMATS`, so
            a playlist cannot make it open other files or URLs (``VideoDecodeError``).
    """

    backend = "pyav"

    def __init__(
        self,
        source: VideoSource,
        *,
        num_threads: int = 1,
        thread_type: str = "AUTO",
        timeout: float | None = None,
        watchdog: float | None = None,
        apply_rotation: bool = True,
        skip_nonref: bool = True,
        strict: bool = True,
        name: str | None = None,
        max_errors: int = 300,
        untrusted: bool = False,
        max_pixels: int | None = None,
    ):
        super().__init__(source, name=name, watchdog=watchdog)
        import av  # lazy: optional dependency

        self._av = av
        self.timeout = timeout
        self.apply_rotation = apply_rotation
        self.skip_nonref = skip_nonref
        self.strict = strict
        self.max_errors = max_errors
        self.untrusted = untrusted
        self.max_pixels = max_pixels
        self._container = None
        self._deadline = None
        self._reformatter = None
        with decode_watchdog(watchdog):
            self._open(source, num_threads, thread_type)

    # -- opening and indexing -------------------------------------------------------------------
    def _fail(self, reason: str) -> VideoDecodeError:
        return VideoDecodeError(self.path, reason)

    def _open(self, source: VideoSource, num_threads: int, thread_type: str) -> None:
        self._start_deadline()
        source = normalise_source(source, self.path)
        if isinstance(source, bytes):
            source = io.BytesIO(source)
        self._source = source
        self._num_threads, self._thread_type = num_threads, thread_type
        self._open_container()
        self._check_size(self._cc.width or 0, self._cc.height or 0)  # the header, nothing decoded
        try:
            self._build_index()
            self._reset_decoder_state()
            first = self._first_frame()
        except VideoDecodeError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise self._fail(f"failed while reading the stream ({type(e).__name__}: {e})") from e
        # (the container may have been reopened: never keep stream objects of an old one)
        stream, cc = self._stream, self._cc
        rotation = normalise_rotation(getattr(first, "rotation", 0) or 0)
        w, h = first.width, first.height
        self._check_size(w, h)  # a header without a size: the first frame has one
        if self.apply_rotation and rotation in (90, 270):
            w, h = h, w
        n = self._index.num_frames
        tb = stream.time_base
        if self._index.ordinal or n < 2 or tb is None:
            rate = stream.average_rate or stream.guessed_rate or 0
            fps = float(rate) if rate else 0.0
            duration = n / fps if fps else 0.0
        else:
            # average over the whole stream, including the last frame's duration
            span = float((self._index.pts[-1] - self._index.pts[0]) * tb)
            duration = span * n / (n - 1) if span > 0 else 0.0
            fps = n / duration if duration > 0 else float(stream.average_rate or 0)
        self.metadata = VideoMetadata(
            path=self.path,
            num_frames=n,
            fps=fps,
            duration=duration,
            width=w,
            height=h,
            rotation=rotation,
            rotation_applied=self.apply_rotation,
            codec=cc.name,
            backend=self.backend,
            header_num_frames=int(stream.frames or 0),
            keyframes=self._index.keyframes,
        )

    def _check_size(self, width: int, height: int) -> None:
        if self.max_pixels is not None and width * height > self.max_pixels:
            self.close()
            raise VideoTooLargeError(self.path, width, height, self.max_pixels)

    def _open_container(self) -> None:
        """(Re)open the container and set up the video stream's decoder."""
        av = self._av
        source = self._source
        if not isinstance(source, str):
            with contextlib.suppress(Exception):
                source.seek(0)
        kwargs: dict[str, Any] = {}
        if self.timeout is not None:
            kwargs["timeout"] = (self.timeout, self.timeout)
        if self.untrusted:
            kwargs["container_options"] = {
                "format_whitelist": ",".join(UNTRUSTED_FORMATS),
                # "none" names no protocol: a buffer's demuxer may open nothing at all
                "protocol_whitelist": "file" if isinstance(source, str) else "none",
            }
        try:
            self._container = av.open(source, "r", **kwargs)
        except (av.FFmpegError, OSError, ValueError) as e:
            # (FFmpeg refuses a format off the whitelist with EINVAL: say what that means)
            hint = (
                "; only video files are accepted here, not playlists or other formats that "
                "refer to further files"
                if self.untrusted and getattr(e, "errno", None) == errno.EINVAL
                else ""
            )
            raise self._fail(
                f"cannot open as a video container ({type(e).__name__}: {e}){hint}"
            ) from e
        container = self._container
        try:
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams}) or ["none"]
                raise self._fail(f"no video stream (streams: {', '.join(kinds)})")
            stream = container.streams.video[0]
            for s in container.streams:
                if s.index != stream.index:
                    with contextlib.suppress(Exception):
                        s.discard = av.stream.Discard.all
            cc = stream.codec_context
            if cc is None or cc.codec is None:
                raise self._fail("unsupported video codec")
            if self.strict:
                # Fail on bitstream errors instead of concealing them (a concealed frame is
                # not frame i of the stream); damaged frames then raise VideoDecodeError.
                # Error concealment itself ("ec") stays on: with ec=0 FFmpeg's h264 decoder
                # flags every frame of multi-slice streams as corrupt.
                cc.options = {"err_detect": "explode"}
            cc.thread_count = self._num_threads
            if self._num_threads != 1:
                cc.thread_type = self._thread_type
        except BaseException:
            self.close()
            raise
        self._stream, self._cc = stream, cc
        self._skipping = False

    def _packets(self):
        """Packets of the video stream; FFmpeg demux errors are caught and reading goes on."""
        av = self._av
        failures = 0
        while True:
            try:
                for packet in self._container.demux(self._stream):
                    failures = 0
                    yield packet
                return
            except av.EOFError:
                return
            except av.FFmpegError as e:
                failures += 1
                self.stats.errors += 1
                self._note(f"demux: {e}")
                if failures >= 3:
                    return

    def _build_index(self) -> None:
        """Demux the whole stream once (no decoding): timestamps and keyframe flags."""
        builder = FrameIndexBuilder()
        errors_before = self.stats.errors
        for packet in self._packets():
            self._check_deadline("indexing")
            builder.add(packet)
        index = builder.build(
            header_frames=int(self._stream.frames or 0),
            demux_failed=self.stats.errors > errors_before,
        )
        if index is None:
            raise self._fail("the video stream has no frames")
        self._index: FrameIndex = index

    def _reset_decoder_state(self) -> None:
        self._pkt_iter = None  # packet generator; None = must seek before decoding
        self._queue: deque = deque()  # decoded frames not yet consumed
        self._pending = None  # (index, frame) read ahead but not consumed
        self._pos = -1  # index of the last frame that came out of the decoder
        self._eof = False
        self._out_count = 0
        self._skipping = False
        self._want_pts: set[int] | None = None  # None: never skip frames
        # Frames that must not be returned because their data or references are damaged:
        # timestamps of packets that failed, of the packet fed just before a failure (damage
        # usually starts before the decoder notices: h264 has no checksums) and of every packet
        # fed after a failure until the next keyframe. The file does not change, so this is
        # kept across seeks.
        self._tainted_pts: set = set()
        self._taint_on = False
        self._last_fed_ts = None
        self._consecutive_errors = 0

    def _first_frame(self):
        self._seek_to(self._index.keyframes[0])
        item = self._next_frame()
        if item is None:
            raise self._fail(
                f"no frame could be decoded ({self._index.num_frames} packets, "
                f"{self.stats.errors} decoding errors)"
            )
        self._pending = item
        return item[1]

    def _note(self, message: str) -> None:
        if len(self.stats.history) < 100:
            self.stats.history.append(message)

    # -- time limits ----------------------------------------------------------------------------
    def _start_deadline(self) -> None:
        self._deadline = None if self.timeout is None else time.monotonic() + self.timeout

    def _check_deadline(self, what: str) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise self._fail(f"timed out after {self.timeout} s while {what}")

    # -- decoding -------------------------------------------------------------------------------
    def _seek_to(self, index: int) -> None:
        """Position the demuxer at the keyframe ``index`` (or the start in ordinal mode)."""
        av = self._av
        self.stats.seeks += 1
        target = 0 if self._index.ordinal else index
        pts = int(self._index.pts[target])
        try:
            if self._index.ordinal:
                self._container.seek(0)
            else:
                self._container.seek(pts, backward=True, any_frame=False, stream=self._stream)
            self._cc.flush_buffers()
        except av.FFmpegError as e:
            # Streams without an index or timestamps (raw .h264, some .avi, pipes) cannot seek:
            # reopen and decode from the start instead.
            self._note(f"seek to {pts}: {e}; reopening")
            self.close()
            self._open_container()
            target = 0
        self._queue.clear()
        self._pending = None
        self._pos = (-1 if self._index.ordinal else target - 1) if target else -1
        self._eof = False
        self._out_count = 0
        self._taint_on = False
        self._last_fed_ts = None
        self._consecutive_errors = 0
        self._pkt_iter = self._packets()

    def _set_skip(self, skip: bool) -> None:
        if skip != self._skipping:
            self._cc.skip_frame = "NONREF" if skip else "DEFAULT"
            self._skipping = skip

    def _next_frame(self):
        """Next decoded frame as ``(index, av.VideoFrame)``, or ``None`` at the end."""
        av = self._av
        while True:
            while not self._queue:
                if self._eof:
                    return None
                packet = next(self._pkt_iter, None)
                if packet is None or packet.size == 0:
                    packet = None
                    self._eof = True
                    self._set_skip(False)
                elif self._want_pts is not None:
                    ts = packet.pts if packet.pts is not None else packet.dts
                    self._set_skip(ts not in self._want_pts)
                self._check_deadline("decoding")
                ts = None
                if packet is not None:
                    ts = packet.pts if packet.pts is not None else packet.dts
                    if packet.is_corrupt:  # cut short (truncated file): never feed it
                        self._taint(ts)
                        continue
                    if packet.is_keyframe:
                        self._taint_on = False
                    if self._taint_on:
                        self._tainted_pts.add(ts)
                self.stats.packets += 1
                try:
                    frames = self._cc.decode(packet)
                except av.EOFError:
                    self._eof = True
                    continue
                except av.FFmpegError as e:
                    self.stats.errors += 1
                    self._note(f"decode: {e}")
                    self._consecutive_errors += 1
                    if self._consecutive_errors > self.max_errors:
                        self._eof = True  # the rest of the file is garbage; stop here
                    self._taint(ts, self._last_fed_ts)
                    continue
                finally:
                    self._last_fed_ts = ts
                self._consecutive_errors = 0
                self._queue.extend(frames)
            frame = self._queue.popleft()
            self.stats.decoded_frames += 1
            if frame.is_corrupt:
                continue
            if self._index.ordinal:
                index = self._out_count
                self._out_count += 1
            else:
                pts = frame.pts if frame.pts is not None else frame.dts
                index = self._index.frame_at(pts)
                if index is None:  # frame of a discarded/corrupt packet
                    continue
                if pts in self._tainted_pts:
                    continue
            if index <= self._pos and not self._index.ordinal:
                continue  # leading frames after a seek that we already passed
            self._pos = index
            return index, frame

    def _taint(self, *timestamps) -> None:
        self._taint_on = True
        self._tainted_pts.update(t for t in timestamps if t is not None)

    def _to_rgb(self, frame) -> np.ndarray:
        self.stats.converted_frames += 1
        # One reformatter per reader: ``frame.to_ndarray(format=...)`` builds a new swscale
        # context for every frame, which costs more than decoding a small frame.
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter  # lazy: optional dependency

            self._reformatter = VideoReformatter()
        return self._reformatter.reformat(frame, format="rgb24").to_ndarray()

    def _decode_target(self, t: int):
        """Decode forward to frame ``t``; returns the frame or None if it could not be decoded."""
        while True:
            item = self._pending or self._next_frame()
            self._pending = None
            if item is None:
                return None
            index, frame = item
            if index < t:
                continue
            if index > t:
                self._pending = item  # t is missing from the stream; keep this one
                return None
            self._pending = item  # allow duplicates / the next call to reuse it
            return frame

    def _get_unique(self, targets: list[int]) -> list[np.ndarray]:
        self._start_deadline()
        if self.skip_nonref and not self._index.ordinal:
            self._want_pts = {int(self._index.pts[t]) for t in targets}
        try:
            out = [self._get_one(t) for t in targets]
        finally:
            self._want_pts = None
            self._set_skip(False)
        if self.apply_rotation and self.metadata.rotation:
            k = self.metadata.rotation // 90
            out = [np.ascontiguousarray(np.rot90(a, k=k)) for a in out]
        return out

    def _needs_seek(self, t: int) -> bool:
        if self._pkt_iter is None:
            return True
        cur = self._pending[0] if self._pending is not None else self._pos
        if self._pending is not None and self._pending[0] == t:
            return False
        if t < cur or (t == cur and self._pending is None):
            return True  # behind the decoder: must go back
        if self._index.ordinal:
            return False
        key = self._index.keyframes[self._index.keyframe_position(t)]
        return key > self._pos + 1  # skipping at least one frame by seeking

    def _get_one(self, t: int) -> np.ndarray:
        k = self._index.keyframe_position(t)
        seeked = self._needs_seek(t)
        if seeked:
            self._seek_to(self._index.keyframes[k])
        frame = self._decode_target(t)
        if frame is None:
            # Retry from this keyframe (the frame may have been skipped as non-reference in an
            # earlier call) and earlier ones (seek landed too late, or broken references).
            retries = [] if self._index.ordinal else sorted({k, max(k - 1, 0), 0}, reverse=True)
            for kk in retries:
                if seeked and kk == k and not self._index.ordinal:
                    continue
                self._seek_to(self._index.keyframes[kk])
                frame = self._decode_target(t)
                if frame is not None:
                    break
        if frame is None:
            raise self._fail(
                f"frame {t} of {self._index.num_frames} could not be decoded "
                f"({self.stats.errors} decoding errors so far)"
            )
        return self._to_rgb(frame)

    def close(self) -> None:
        # End the packet generator (and PyAV's demux generator inside it) while the container
        # is still open, then close the container.
        pkt_iter, self._pkt_iter = getattr(self, "_pkt_iter", None), None
        if pkt_iter is not None:
            with contextlib.suppress(Exception):
                pkt_iter.close()
        container, self._container = getattr(self, "_container", None), None
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()
