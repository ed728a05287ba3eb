"""The frame index of a video stream: frame numbers from packet timestamps, and the keyframes.

Built by demuxing the file once, without decoding. Frame ``i`` is the frame with the ``i``-th
smallest presentation timestamp, which is exact for variable frame rate, B-frames and edit lists
(no ``fps * time`` arithmetic). A reader seeks to a keyframe at or before the frame it wants and
decodes forward, recognising frames by their timestamps.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import av

__all__ = ["FrameIndex", "FrameIndexBuilder"]


class FrameIndex:
    """Timestamps and keyframes of a video stream's frames.

    ``pts`` is int64 ``[N]``, sorted: frame ``i`` has timestamp ``pts[i]``. ``keyframes`` are the
    indices of the frames at ``key_pts`` that decoding can start from (sorted, never empty).
    ``ordinal``: the stream has no usable timestamps (some missing or repeated), so frames are
    numbered in the decoder's output order and decoded sequentially from the start;
    ``keyframes`` is then ``(0,)``.
    """

    def __init__(self, pts: np.ndarray, key_pts: Iterable[int], ordinal: bool):
        self.pts = pts
        self.ordinal = ordinal
        self._by_pts = {int(p): i for i, p in enumerate(pts)}
        keyframes = (
            () if ordinal else sorted({self._by_pts[p] for p in key_pts if p in self._by_pts})
        )
        self.keyframes: tuple[int, ...] = tuple(keyframes) or (0,)

    @property
    def num_frames(self) -> int:
        return len(self.pts)

    def frame_at(self, pts: int) -> int | None:
        """Index of the frame with timestamp ``pts``; ``None`` if no indexed frame has it."""
        return self._by_pts.get(pts)

    def keyframe_position(self, index: int) -> int:
        """Position in ``keyframes`` of the last keyframe at or before frame ``index``."""
        return bisect.bisect_right(self.keyframes, index) - 1


class FrameIndexBuilder:
    """Collects a stream's packets in demux order, then builds its :class:`FrameIndex`."""

    def __init__(self) -> None:
        self._pts: list[int] = []
        self._key_pts: list[int] = []
        self._max_dts: int | None = None
        self._missing_ts = False
        self._damaged = False

    def add(self, packet: av.Packet) -> None:
        """Record one demuxed packet (empty, discarded and cut-short packets are not frames)."""
        if packet.size == 0 or packet.is_discard:
            return
        if packet.is_corrupt:
            self._damaged = True
            return
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None:
            self._missing_ts = True
            self._pts.append(len(self._pts))
            return
        self._pts.append(int(ts))
        if packet.dts is not None:
            dts = int(packet.dts)
            self._max_dts = dts if self._max_dts is None else max(self._max_dts, dts)
        if packet.is_keyframe:
            self._key_pts.append(int(ts))

    def build(self, header_frames: int, demux_failed: bool) -> FrameIndex | None:
        """The index of the packets added, or ``None`` when no frame is left.

        ``header_frames`` is the container's frame count (0 if unknown); ``demux_failed`` says
        demuxing hit errors. Either (header claims more frames than were found) or a cut-short
        packet marks the file as truncated.
        """
        pts_list = self._pts
        damaged = self._damaged or demux_failed or 0 < header_frames > len(pts_list)
        if damaged and not self._missing_ts and self._max_dts is not None:
            # A truncated file holds a prefix of the packets in *decoding* order. Frames still
            # missing have pts >= dts > max_dts, so frames up to max_dts have no gaps between
            # them; later ones might (B-frames), so they are dropped to keep indices exact.
            pts_list = [p for p in pts_list if p <= self._max_dts]
        if not pts_list:
            return None
        pts = np.array(sorted(pts_list), dtype=np.int64)
        ordinal = self._missing_ts or bool(np.any(np.diff(pts) == 0))
        return FrameIndex(pts, self._key_pts, ordinal)
