"""Video decoding: one reader interface, one module per backend, the watchdog, file discovery."""

from xclip.data.decode import (
    BACKENDS,
    DecodeStats,
    DecordReader,
    FrameIndexError,
    PyAVReader,
    TorchCodecReader,
    VideoDecodeError,
    VideoMetadata,
    VideoReader,
    available_backends,
    decode_watchdog,
    open_video,
    read_frames,
)
from xclip.data.video.files import VIDEO_EXTENSIONS, find_videos

__all__ = [
    "BACKENDS",
    "VIDEO_EXTENSIONS",
    "DecodeStats",
    "DecordReader",
    "FrameIndexError",
    "PyAVReader",
    "TorchCodecReader",
    "VideoDecodeError",
    "VideoMetadata",
    "VideoReader",
    "available_backends",
    "decode_watchdog",
    "find_videos",
    "open_video",
    "read_frames",
]
