"""The backend factory: choose a reader by name, or read a few frames in one call."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from xclip.data.video.decord_reader import DecordReader
from xclip.data.video.pyav_reader import PyAVReader
from xclip.data.video.reader import VideoReader, VideoSource
from xclip.data.video.torchcodec_reader import TorchCodecReader
from xclip.errors import InputError

__all__ = ["BACKENDS", "available_backends", "open_video", "read_frames"]

BACKENDS = ("pyav", "torchcodec", "decord")

_READERS: dict[str, type[VideoReader]] = {
    "pyav": PyAVReader,
    "torchcodec": TorchCodecReader,
    "decord": DecordReader,
}


def available_backends() -> list[str]:
    """Backends importable here (torchcodec also needs the system FFmpeg libraries)."""
    out = []
    for name, module in (
        ("pyav", "av"),
        ("torchcodec", "torchcodec.decoders"),
        ("decord", "decord"),
    ):
        try:
            __import__(module)
        except Exception:  # installed but unusable (torchcodec without FFmpeg) = unavailable
            continue
        out.append(name)
    return out


def open_video(source: VideoSource, backend: str | None = "auto", **kwargs: Any) -> VideoReader:
    """Open ``source`` (path, bytes or binary file-like) with a backend.

    ``backend``: ``"pyav"``, ``"torchcodec"``, ``"decord"`` or ``"auto"`` (= ``"pyav"``, the
    fastest or equal-fastest in ``benchmarks/bench_data.py`` and the only one that is always
    installed). Keyword arguments go to the reader (``num_threads``, ``timeout``, ``watchdog``,
    ``name``, ...; options a backend does not have are ignored by it, except ``untrusted=True``,
    which only the PyAV backend implements and the others refuse).
    """
    name = "pyav" if backend in ("auto", None, "") else str(backend).lower()
    if name not in _READERS:
        raise InputError(
            f"unknown video backend {backend!r}; choose from auto, {', '.join(BACKENDS)}"
        )
    if kwargs.get("untrusted") and name != "pyav":
        # ignoring it would silently decode a stranger's playlist without the restriction
        raise InputError(f"untrusted=True needs the pyav backend, not {name!r}")
    return _READERS[name](source, **kwargs)


def read_frames(
    source: VideoSource, indices: npt.ArrayLike, backend: str | None = "auto", **kwargs: Any
) -> np.ndarray:
    """Open, read ``indices`` as uint8 ``[N, H, W, 3]`` RGB, close."""
    with open_video(source, backend, **kwargs) as reader:
        return reader.get_frames(indices)
