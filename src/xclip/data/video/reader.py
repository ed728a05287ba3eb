"""The reader interface every backend implements: open once, read any frames by index, close.

A reader's ``get_frames`` takes indices in any order, with duplicates, checks them against the
stream (:class:`FrameIndexError`), asks the backend for each distinct frame once, in increasing
order, and returns uint8 ``[N, H, W, 3]`` RGB in the order asked for. ``metadata`` describes the
stream and ``stats`` counts the work done.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

import numpy as np
import numpy.typing as npt

from xclip.data.video.errors import FrameIndexError, VideoDecodeError
from xclip.data.video.watchdog import decode_watchdog

__all__ = [
    "DecodeStats",
    "VideoMetadata",
    "VideoReader",
    "VideoSource",
    "normalise_rotation",
    "normalise_source",
]

# a path, the bytes of a file, or a seekable binary file-like object (e.g. a tar member)
VideoSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO
_Reader = TypeVar("_Reader", bound="VideoReader")


@dataclass(frozen=True)
class VideoMetadata:
    """What a reader knows about the video stream after opening it.

    ``width``/``height`` are those of the returned frames, i.e. after rotation.
    ``rotation`` is the display rotation in degrees counter-clockwise (0, 90, 180 or 270) as
    stored in the file's display matrix; readers that apply it say so in ``rotation_applied``.
    ``num_frames`` counts the frames present in the file (demuxed packets for PyAV), which can
    be lower than the header's claim for truncated files. ``fps`` is the average frame rate
    ``num_frames / duration``; ``duration`` is in seconds.
    """

    path: str
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    rotation: int | None = 0  # None: the backend does not report it
    rotation_applied: bool = True
    codec: str = ""
    backend: str = ""
    header_num_frames: int = 0
    keyframes: tuple[int, ...] = ()


@dataclass
class DecodeStats:
    """Instrumentation counters of a reader (cumulative; reset with ``reader.stats.reset()``)."""

    decoded_frames: int = 0  # frames that came out of the decoder
    converted_frames: int = 0  # frames converted to RGB (returned)
    packets: int = 0  # packets sent to the decoder
    seeks: int = 0
    errors: int = 0  # FFmpeg errors caught and recovered from
    calls: int = 0
    history: list[str] = field(default_factory=list, repr=False)  # first 100 error messages

    def reset(self) -> None:
        self.decoded_frames = self.converted_frames = self.packets = 0
        self.seeks = self.errors = self.calls = 0
        self.history.clear()


def normalise_rotation(degrees: float) -> int:
    """A display rotation as one of 0, 90, 180, 270 (nearest quarter turn, counter-clockwise)."""
    return int(round(float(degrees) / 90.0)) % 4 * 90


def normalise_source(source: VideoSource, path: str) -> str | bytes | BinaryIO:
    """``source`` as a backend takes it: path-likes as ``str`` (which must exist, else
    :class:`VideoDecodeError` naming ``path``), buffers as ``bytes``, file objects as given."""
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str) and not os.path.exists(source):
        raise VideoDecodeError(path, "file does not exist")
    if isinstance(source, bytearray | memoryview):
        source = bytes(source)
    return source


def _source_name(source: VideoSource, name: str | None) -> str:
    if name is not None:
        return str(name)
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return "<bytes>"
    return str(getattr(source, "name", "<file-like>"))


def _as_indices(indices: npt.ArrayLike) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1:
        idx = idx.reshape(-1)
    if (
        idx.size
        and not np.issubdtype(idx.dtype, np.integer)
        and not np.all(np.equal(np.mod(idx, 1), 0))
    ):
        raise TypeError(f"frame indices must be integers, got {idx.dtype}")
    return idx.astype(np.int64, copy=False)


def _check_range(path: str, idx: np.ndarray, num_frames: int) -> None:
    if idx.size == 0:
        return
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= num_frames:
        bad = hi if hi >= num_frames else lo
        raise FrameIndexError(
            path,
            f"requested frame index {bad} (max requested {hi}) but the video has "
            f"{num_frames} decodable frames (valid indices 0..{num_frames - 1})",
        )


class VideoReader:
    """Base class: open once, read any frames by index, close.

    Subclasses implement ``_get_unique(sorted_unique_indices) -> list of [H, W, 3] arrays``.
    """

    backend = ""

    def __init__(
        self, source: VideoSource, *, name: str | None = None, watchdog: float | None = None
    ):
        self.path = _source_name(source, name)
        self.watchdog = watchdog
        self.stats = DecodeStats()
        self.metadata: VideoMetadata

    @property
    def num_frames(self) -> int:
        return self.metadata.num_frames

    def __len__(self) -> int:
        return self.num_frames

    def get_frames(self, indices: npt.ArrayLike) -> np.ndarray:
        """Frames ``indices`` (any order, duplicates allowed) as uint8 ``[N, H, W, 3]`` RGB."""
        idx = _as_indices(indices)
        _check_range(self.path, idx, self.num_frames)
        self.stats.calls += 1
        if idx.size == 0:
            return np.empty((0, self.metadata.height, self.metadata.width, 3), np.uint8)
        uniq, inverse = np.unique(idx, return_inverse=True)
        with decode_watchdog(self.watchdog):
            frames = self._get_unique([int(i) for i in uniq])
        batch = np.stack(frames) if len(frames) > 1 else frames[0][None]
        if len(uniq) == len(idx) and np.array_equal(uniq, idx):
            return np.ascontiguousarray(batch)
        return batch[inverse.reshape(-1)]

    def get_frame(self, index: int) -> np.ndarray:
        return self.get_frames([index])[0]

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def __enter__(self: _Reader) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _get_unique(self, targets: list[int]) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        m = getattr(self, "metadata", None)
        return f"{type(self).__name__}({self.path!r}, {m})"
