"""Thumbnails of found moments: the frame at a moment's middle as a small JPEG.

The frame is read by the service's strict decoder (:func:`~.decode.open_checked`: the pixel
cap, the time limit) in its :class:`~.decode.DecodePool`, so a thumbnail never runs on the event
loop nor beside the model, and the JPEGs are kept in a bounded LRU: a page of results asks for
the same ones again when it is reopened or filtered.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from xclip.inference import VideoClassifier

from .decode import DecodePool, Limits, open_checked, read_frame
from .results import jpeg_bytes

__all__ = ["THUMB_HEIGHT", "Thumbnails"]

THUMB_HEIGHT = 144  # pixels: twice the height a card shows, for sharp screens
CACHE_ENTRIES = 1024  # about 5-10 kB each


class Thumbnails:
    """JPEGs of frames of library videos, at most ``height`` pixels high; the last ``entries``
    made are kept."""

    def __init__(
        self,
        clf: VideoClassifier,
        decoder: DecodePool,
        limits: Limits,
        height: int = THUMB_HEIGHT,
        entries: int = CACHE_ENTRIES,
    ) -> None:
        self.clf, self.decoder, self.limits = clf, decoder, limits
        self.height, self.entries = height, entries
        self.cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self.made = 0  # JPEGs decoded (not from the cache)

    async def get(self, vid: int, path: Path, name: str, seconds: float) -> bytes:
        """The JPEG of video ``vid`` (the file ``path``, ``name`` in messages) at ``seconds``
        (to the nearest tenth; clamped to the video)."""
        key = (vid, round(seconds * 10))
        data = self.cache.get(key)
        if data is not None:
            self.cache.move_to_end(key)
            return data
        data = await self.decoder.run(self._make, path, name, key[1] / 10)
        self.cache[key] = data
        self.made += 1
        while len(self.cache) > self.entries:
            self.cache.popitem(last=False)
        return data

    def _make(self, path: Path, name: str, seconds: float) -> bytes:
        reader = open_checked(self.clf, path, name, self.limits)
        try:
            fps = reader.metadata.fps or 0.0
            frame = read_frame(reader, round(seconds * fps), name=name, limits=self.limits)
        finally:
            reader.close()
        return jpeg_bytes(frame, self.height)
