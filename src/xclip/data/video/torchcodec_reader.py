"""The torchcodec backend: ``VideoDecoder(seek_mode="exact")`` (optional; needs the system FFmpeg
libraries)."""

from __future__ import annotations

import numpy as np

from xclip.data.video.errors import VideoDecodeError, is_decoder_failure
from xclip.data.video.reader import (
    VideoMetadata,
    VideoReader,
    VideoSource,
    normalise_rotation,
    normalise_source,
)
from xclip.data.video.watchdog import decode_watchdog
from xclip.errors import InputError

__all__ = ["TorchCodecReader", "ffmpeg_problem"]

NO_FFMPEG = (
    "torchcodec is installed but finds no usable FFmpeg libraries (install FFmpeg 4-8 "
    "shared libraries, e.g. apt-get install ffmpeg, or use --backend pyav)"
)


def ffmpeg_problem() -> str | None:
    """Why the installed torchcodec cannot decode here, as one line, or ``None`` if it can.

    torchcodec >= 0.17 imports without the system FFmpeg libraries and only fails at the first
    decode; its ``ffmpeg_major_version`` is then ``None``.
    """
    import torchcodec  # lazy: optional dependency

    return NO_FFMPEG if getattr(torchcodec, "ffmpeg_major_version", 0) is None else None


class TorchCodecReader(VideoReader):
    """torchcodec ``VideoDecoder(seek_mode="exact")``; applies rotation itself."""

    backend = "torchcodec"

    def __init__(
        self,
        source: VideoSource,
        *,
        num_threads: int = 1,
        name: str | None = None,
        watchdog: float | None = None,
        **_ignored: object,
    ):
        super().__init__(source, name=name, watchdog=watchdog)
        from torchcodec.decoders import VideoDecoder  # lazy: optional dependency

        # without FFmpeg every file would "fail to open": say what is missing instead of calling
        # each video unreadable
        problem = ffmpeg_problem()
        if problem is not None:
            raise InputError(problem)

        source = normalise_source(source, self.path)
        try:
            with decode_watchdog(watchdog):
                self._dec = VideoDecoder(
                    source,
                    seek_mode="exact",
                    num_ffmpeg_threads=num_threads,
                    dimension_order="NHWC",
                )
            md = self._dec.metadata
        except Exception as e:
            if not is_decoder_failure(e):
                raise
            raise VideoDecodeError(self.path, f"cannot open ({type(e).__name__}: {e})") from e
        n = int(md.num_frames or 0)
        if n <= 0:
            raise VideoDecodeError(self.path, "the video stream has no frames")
        rotation = normalise_rotation(getattr(md, "rotation", 0) or 0)
        self.metadata = VideoMetadata(
            path=self.path,
            num_frames=n,
            fps=float(md.average_fps or 0.0),
            duration=float(md.duration_seconds or 0.0),
            width=int(md.width),
            height=int(md.height),
            rotation=rotation,
            rotation_applied=True,
            codec=str(md.codec or ""),
            backend=self.backend,
            header_num_frames=int(getattr(md, "num_frames_from_header", 0) or 0),
        )

    def _get_unique(self, targets: list[int]) -> list[np.ndarray]:
        try:
            batch = self._dec.get_frames_at(targets).data.numpy()
        except Exception as e:
            if not is_decoder_failure(e):
                raise
            raise VideoDecodeError(self.path, f"decoding failed ({type(e).__name__}: {e})") from e
        self.stats.decoded_frames += len(targets)
        self.stats.converted_frames += len(targets)
        return list(batch)

    def close(self) -> None:
        self._dec = None
