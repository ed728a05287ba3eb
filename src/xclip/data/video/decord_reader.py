"""The decord backend: ``decord.VideoReader.get_batch`` (optional)."""

from __future__ import annotations

import io

import numpy as np

from xclip.data.video.errors import VideoDecodeError, is_decoder_failure
from xclip.data.video.reader import VideoMetadata, VideoReader, VideoSource, normalise_source
from xclip.data.video.watchdog import decode_watchdog

__all__ = ["DecordReader"]


class DecordReader(VideoReader):
    """decord ``VideoReader.get_batch``.

    decord applies rotation metadata but does not report it (``metadata.rotation`` is ``None``).
    ``metadata`` is built on first access (decord needs to decode a frame to know the frame
    size); ``num_frames``/``len()`` are free. decord fails on some frame sizes (e.g. 48 px wide:
    "DECORDArrayCopyFromTo: The size must exactly match"); that raises ``VideoDecodeError``.
    """

    backend = "decord"

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
        import decord  # lazy: optional dependency

        source = normalise_source(source, self.path)
        if isinstance(source, bytes):
            source = io.BytesIO(source)
        try:
            with decode_watchdog(watchdog):
                self._vr = decord.VideoReader(source, num_threads=num_threads)
            self._n = len(self._vr)
        except Exception as e:
            if not is_decoder_failure(e):
                raise
            raise VideoDecodeError(self.path, f"cannot open ({type(e).__name__}: {e})") from e
        if self._n <= 0:
            raise VideoDecodeError(self.path, "the video stream has no frames")
        self._metadata: VideoMetadata | None = None

    @property
    def num_frames(self) -> int:
        return self._n

    @property
    def metadata(self) -> VideoMetadata:
        if self._metadata is None:
            first = self._get_unique([0])[0]
            fps = float(self._vr.get_avg_fps())
            self._metadata = VideoMetadata(
                path=self.path,
                num_frames=self._n,
                fps=fps,
                duration=self._n / fps if fps else 0.0,
                width=int(first.shape[1]),
                height=int(first.shape[0]),
                rotation=None,
                rotation_applied=True,
                backend=self.backend,
                header_num_frames=self._n,
                keyframes=tuple(int(k) for k in self._vr.get_key_indices()),
            )
        return self._metadata

    def _get_unique(self, targets: list[int]) -> list[np.ndarray]:
        try:
            batch = self._vr.get_batch(targets).asnumpy()
        except Exception as e:
            if not is_decoder_failure(e):
                raise
            raise VideoDecodeError(self.path, f"decoding failed ({type(e).__name__}: {e})") from e
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise VideoDecodeError(
                self.path, f"decord returned frames of shape {batch.shape} (decord bug)"
            )
        self.stats.decoded_frames += len(targets)
        self.stats.converted_frames += len(targets)
        return list(batch)

    def close(self) -> None:
        self._vr = None
