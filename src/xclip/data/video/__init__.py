"""Video decoding: one reader interface, one module per backend, the watchdog, file discovery.

Frame-exact decoding with keyframe-aware seeking, one interface and three backends::

    from xclip.data.video import open_video

    with open_video("video.mp4") as reader:            # backend="auto" -> PyAV
        meta = reader.metadata                          # num_frames, fps, duration, width, ...
        clip = reader.get_frames([3, 40, 40, 7])        # uint8 [4, H, W, 3] RGB, in that order

* ``pyav`` (default, always available; :mod:`.pyav_reader`): demuxes the file once to learn
  every frame's timestamp and the keyframes, then seeks only where that skips frames.
* ``torchcodec`` (optional; needs the system FFmpeg libraries) with ``seek_mode="exact"``.
* ``decord`` (optional; ``get_batch``). decord rotates frames but does not report the angle.

Errors are :class:`VideoDecodeError` (with ``.path`` and ``.reason``) whatever the backend;
asking for a frame past the end raises :class:`FrameIndexError`, a subclass.

Time limits (see :class:`PyAVReader` and :func:`decode_watchdog`): ``timeout`` bounds each stall
of FFmpeg's I/O and the total time of each ``open``/``get_frames`` call, checked between packets;
``watchdog`` additionally ends the process (dumping tracebacks) if one call exceeds it even
inside a single C call, so a DataLoader worker can never hang forever: the DataLoader then
reports a dead worker instead of waiting.

Modules: ``errors`` (the exception types), ``reader`` (the interface, metadata, counters),
``pyav_reader`` / ``torchcodec_reader`` / ``decord_reader`` (one backend each), ``watchdog``,
``backends`` (the factory), ``files`` (video extensions, folder expansion).
"""

from xclip.data.video.backends import (
    BACKENDS,
    available_backends,
    backend_problem,
    open_video,
    read_frames,
)
from xclip.data.video.decord_reader import DecordReader
from xclip.data.video.errors import FrameIndexError, VideoDecodeError, VideoTooLargeError
from xclip.data.video.files import VIDEO_EXTENSIONS, find_videos
from xclip.data.video.pyav_reader import PyAVReader
from xclip.data.video.reader import DecodeStats, VideoMetadata, VideoReader
from xclip.data.video.torchcodec_reader import TorchCodecReader
from xclip.data.video.watchdog import decode_watchdog

__all__ = [
    "BACKENDS",
    "VIDEO_EXTENSIONS",
    "DecodeStats",
    "DecordReader",
    "FrameIndexError",
    "PyAVReader",
    "TorchCodecReader",
    "VideoDecodeError",
    "VideoTooLargeError",
    "VideoMetadata",
    "VideoReader",
    "available_backends",
    "backend_problem",
    "decode_watchdog",
    "find_videos",
    "open_video",
    "read_frames",
]
