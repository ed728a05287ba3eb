"""One video path for every caller: decode -> sample T frames per view -> preprocess.

A :class:`VideoProcessor` turns a video (a path, the bytes of a file, uint8 frames or an already
preprocessed clip) into the float clips a model takes, as a :class:`PreparedVideo`. It is the
only place that does this: :class:`~xclip.inference.VideoPipeline` (and so
:class:`~xclip.inference.VideoClassifier`, :func:`~xclip.inference.embed_videos` and timelines),
the engines' workers and the server all call it, as ``transformers`` has one processor per model.

The frames and preprocessing are those the weights expect: the frame count and input size come
from ``model.cfg`` and mean/std/resize from ``model.preprocess``. Sampling is the original test
sampling (the centre frame of each of T equal segments; ``num_clips > 1`` takes evenly shifted
points inside the segments) and ``num_crops=3`` takes three spatial crops.

A processor is plain settings (a frozen dataclass): it pickles to another process (the Ray
engine's CPU tasks) as data, and :meth:`VideoProcessor.replace` derives a stricter one (the
server's: the PyAV backend restricted to the one file, a time limit and a pixel cap).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from xclip.errors import InputError

from ..config import PreprocessConfig
from ..data.sampling import sample_frame_indices
from ..data.transforms import EvalTransform
from ..data.video import VideoReader, VideoTooLargeError, open_video
from .errors import explain_decode_errors

logger = logging.getLogger(__name__)

__all__ = ["PreparedVideo", "VideoProcessor"]

# what a frame source of :meth:`VideoProcessor.frames` can be: an open reader or decoded frames
FrameSource = VideoReader | np.ndarray | torch.Tensor


@dataclass
class PreparedVideo:
    """A decoded, sampled and preprocessed video, ready for the model.

    ``clips``: float ``[V, T, 3, S, S]`` (V = num_clips * num_crops, crop-major);
    ``frame_indices``: int64 ``[num_clips, T]`` (empty for already preprocessed input);
    ``frames``: the sampled frames as decoded, uint8 ``[num_clips, T, H, W, 3]`` (only with
    ``keep_frames=True``); ``fps``/``num_frames``/``duration``: of the source when known;
    ``start``/``end``: the window of a timeline, in seconds (None for a whole video).
    """

    source: str
    clips: torch.Tensor
    frame_indices: np.ndarray
    frames: np.ndarray | None = None
    fps: float | None = None
    num_frames: int | None = None
    duration: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class VideoProcessor:
    """Decode, sample and preprocess videos for one model's input.

    Args:
        config: the model's :class:`~xclip.config.PreprocessConfig` (frames, size, mean/std).
        num_clips, num_crops: views per video (temporal clips x 1 or 3 crops).
        view_mode: the sampling of the temporal clips (see
            :func:`~xclip.data.sampling.sample_frame_indices`); ``"uniform"`` is deterministic.
        decode_threads: FFmpeg threads per video (1 = least overhead when decoding in parallel).
        backend: the decoder (:func:`~xclip.data.video.open_video`; ``"auto"`` is PyAV).
        timeout: seconds one video may take to decode (None: no limit).
        untrusted: restrict FFmpeg to the one file (a stranger's upload; PyAV only).
        max_pixels: the largest frame (width x height) accepted; a larger video is refused after
            its header is read and before any frame is decoded (None: no limit).
    """

    config: PreprocessConfig
    num_clips: int = 1
    num_crops: int = 1
    view_mode: str = "uniform"
    decode_threads: int = 1
    backend: str = "auto"
    timeout: float | None = None
    untrusted: bool = False
    max_pixels: int | None = None

    def __post_init__(self) -> None:
        for key in ("num_clips", "decode_threads"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{key} must be an int, got {type(v).__name__}")
        if self.num_clips < 1:
            raise InputError(f"num_clips must be >= 1, got {self.num_clips}")
        if self.num_crops not in (1, 3):
            raise InputError(f"num_crops must be 1 or 3, got {self.num_crops}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise InputError(f"max_pixels must be >= 1 or None, got {self.max_pixels}")

    @classmethod
    def for_model(cls, model: Any, **kw: Any) -> VideoProcessor:
        """The processor of ``model`` (an :class:`~xclip.XCLIP` or an exported model: anything
        with ``cfg`` and ``preprocess``). Its architecture's frame count and size win over a
        disagreeing ``model.preprocess`` (with a warning)."""
        cfg, pre = model.cfg, model.preprocess
        if pre.num_frames != cfg.num_frames or pre.image_size != cfg.image_size:
            logger.warning(
                "model.preprocess (%d frames, %dpx) disagrees with the architecture (%d, %dpx); "
                "using the architecture's",
                pre.num_frames,
                pre.image_size,
                cfg.num_frames,
                cfg.image_size,
            )
            pre = PreprocessConfig(cfg.num_frames, cfg.image_size, pre.mean, pre.std)
        return cls(pre, **kw)

    def replace(self, **changes: Any) -> VideoProcessor:
        """A copy with other settings, e.g. ``replace(untrusted=True, timeout=30)``."""
        return dataclasses.replace(self, **changes)

    def __getstate__(self) -> dict[str, Any]:
        # the transform is rebuilt where the processor lands: plain settings travel
        return {k: v for k, v in self.__dict__.items() if k != "transform"}

    @property
    def num_frames(self) -> int:
        """T, the frames of one view."""
        return self.config.num_frames

    @property
    def num_views(self) -> int:
        """V = num_clips * num_crops, the views of one video."""
        return self.num_clips * self.num_crops

    @cached_property
    def transform(self) -> EvalTransform:
        """uint8 ``[num_clips, T, H, W, 3]`` -> float ``[V, T, 3, S, S]``."""
        return EvalTransform.from_preprocess(self.config, num_crops=self.num_crops)

    # -- the steps ----------------------------------------------------------------------------
    def sample_indices(self, total: int) -> np.ndarray:
        """The frames the model sees of a video of ``total`` frames: int64 ``[num_clips, T]``."""
        return sample_frame_indices(
            total, self.num_frames, train=False, num_views=self.num_clips, view_mode=self.view_mode
        )

    def open(
        self, video: str | os.PathLike | bytes | bytearray | memoryview, name: str | None = None
    ) -> VideoReader:
        """A reader for a video file's path or bytes (``name`` names bytes in messages).

        ``FileNotFoundError``/``IsADirectoryError`` (file-system errors: a batch records them as
        failed videos), :class:`~xclip.data.video.VideoDecodeError` from the decoder (including
        :class:`~xclip.data.video.VideoTooLargeError` above ``max_pixels``: PyAV refuses it
        from the header, other backends right after opening), and
        ``TypeError`` for what cannot be a video file (a caller's mistake: it propagates)."""
        kw: dict[str, Any] = {"num_threads": self.decode_threads, "max_pixels": self.max_pixels}
        if self.timeout is not None:
            kw["timeout"] = self.timeout
        if self.untrusted:
            kw["untrusted"] = True
        if isinstance(video, bytes | bytearray | memoryview):
            reader = open_video(bytes(video), self.backend, name=name or "<bytes>", **kw)
        elif isinstance(video, str | os.PathLike):
            path = os.fspath(video)
            if not os.path.exists(path):
                raise FileNotFoundError(f"video not found: {path}")
            if os.path.isdir(path):
                raise IsADirectoryError(
                    f"{path} is a folder, not a video; pass its videos (find_videos) or use "
                    f"classify_many"
                )
            reader = open_video(path, self.backend, **({"name": name} if name else {}), **kw)
        else:
            raise TypeError(
                f"video must be a path, bytes, uint8 frames or a float clip tensor, got "
                f"{type(video).__name__}"
            )
        meta = reader.metadata
        if self.max_pixels is not None and meta.width * meta.height > self.max_pixels:
            reader.close()
            raise VideoTooLargeError(name or meta.path, meta.width, meta.height, self.max_pixels)
        return reader

    def frames(self, source: FrameSource, idx: np.ndarray) -> np.ndarray | torch.Tensor:
        """The frames at ``idx`` (any shape) of an open reader or of decoded uint8 frames
        ``[N, H, W, 3]``: uint8 ``[*idx.shape, H, W, 3]``, read in one call."""
        flat = idx.reshape(-1)
        if isinstance(source, VideoReader):
            out = source.get_frames(flat)
        elif isinstance(source, torch.Tensor):
            out = source[torch.from_numpy(flat)]
        else:
            out = source[flat]
        return out.reshape(*idx.shape, *out.shape[1:])

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[num_clips, T, H, W, 3]`` -> float ``[V, T, 3, S, S]``."""
        return self.transform(frames)

    # -- whole videos -------------------------------------------------------------------------
    def __call__(
        self, video: Any, *, keep_frames: bool = False, name: str | None = None
    ) -> PreparedVideo:
        """Decode (paths, bytes), sample T frames per view and preprocess.

        ``video``: a path; the bytes of a video file; uint8 frames of a whole video
        ``[N, H, W, 3]`` or ``[N, 3, H, W]`` (T frames are sampled from the N); or an already
        preprocessed float clip ``[T, 3, S, S]`` / ``[V, T, 3, S, S]`` (used as is; the model
        checks its frames and size).
        """
        if isinstance(video, torch.Tensor) and video.is_floating_point():
            return self._preprocessed(video, name or "<tensor>")
        if isinstance(video, np.ndarray | torch.Tensor):
            return self._from_frames(video, name or "<frames>", keep_frames)
        return self._from_file(video, name, keep_frames)

    def _preprocessed(self, video: torch.Tensor, what: str) -> PreparedVideo:
        clips = video.unsqueeze(0) if video.ndim == 4 else video
        if clips.ndim != 5:
            raise InputError(
                f"{what}: a preprocessed clip must be float [T, 3, S, S] or [V, T, 3, S, S], "
                f"got shape {tuple(video.shape)}"
            )
        if not bool(torch.isfinite(clips).all()):
            bad = int((~torch.isfinite(clips)).sum())
            raise InputError(
                f"{what}: the clip holds {bad} NaN or infinite value(s); preprocessed clips "
                f"must be finite (check the code that made it)"
            )
        # the model's own dtype: autocast handles bf16/fp16, float64 would fail in matmul
        return PreparedVideo(what, clips.float(), np.empty((0, 0), np.int64))

    def _from_frames(
        self, arr: np.ndarray | torch.Tensor, what: str, keep_frames: bool
    ) -> PreparedVideo:
        check_frames(arr, what)
        t0 = time.perf_counter()
        idx = self.sample_indices(int(arr.shape[0]))
        frames = self.frames(arr, idx)
        t1 = time.perf_counter()
        clips = self.preprocess(frames)
        t2 = time.perf_counter()
        return PreparedVideo(
            what, clips, idx, frames if keep_frames else None,
            num_frames=int(arr.shape[0]), timings={"decode": t1 - t0, "preprocess": t2 - t1},
        )  # fmt: skip

    def _from_file(self, video: Any, name: str | None, keep_frames: bool) -> PreparedVideo:
        with explain_decode_errors(), self.open(video, name) as reader:
            return self.from_reader(
                reader,
                keep_frames=keep_frames,
                name=name or (os.fspath(video) if isinstance(video, str | os.PathLike) else None),
            )

    def from_reader(
        self, reader: VideoReader, *, keep_frames: bool = False, name: str | None = None
    ) -> PreparedVideo:
        """The whole video of an open reader (:meth:`open`), prepared; ``name`` names it
        (default: the reader's path)."""
        t0 = time.perf_counter()
        meta = reader.metadata
        idx = self.sample_indices(reader.num_frames)
        frames = self.frames(reader, idx)  # uint8 [num_clips, T, H, W, 3]
        t1 = time.perf_counter()
        clips = self.preprocess(frames)
        t2 = time.perf_counter()
        return PreparedVideo(
            name or meta.path, clips, idx, frames if keep_frames else None,
            fps=meta.fps, num_frames=meta.num_frames, duration=meta.duration,
            timings={"decode": t1 - t0, "preprocess": t2 - t1},
        )  # fmt: skip

    # -- windows of a long video --------------------------------------------------------------
    def windows(
        self,
        source: FrameSource,
        windows: Sequence[tuple[int, int]],
        fps: float,
        name: str = "<video>",
        *,
        keep_frames: bool = False,
    ) -> list[PreparedVideo]:
        """The windows ``[lo, hi)`` (frame ranges, :func:`~xclip.inference.timeline.frame_windows`)
        of an open reader or decoded frames, each prepared like a whole video (T frames at its
        segment centres), with ``start``/``end`` in seconds. The frames of all the windows are
        read in one call: one pass of the decoder serves them all."""
        if not windows:
            return []
        t0 = time.perf_counter()
        idx = np.stack([lo + self.sample_indices(hi - lo) for lo, hi in windows])  # [W, C, T]
        frames = self.frames(source, idx)  # [W, num_clips, T, H, W, 3]
        t1 = time.perf_counter()
        clips = [self.preprocess(f) for f in frames]
        t2 = time.perf_counter()
        n = len(windows)
        timings = {"decode": (t1 - t0) / n, "preprocess": (t2 - t1) / n}
        meta = source.metadata if isinstance(source, VideoReader) else None
        return [
            PreparedVideo(
                name,
                c,
                i,
                f if keep_frames else None,
                fps=fps,
                num_frames=meta.num_frames if meta else len(source),
                duration=meta.duration if meta else len(source) / fps,
                timings=dict(timings),
                start=lo / fps,
                end=hi / fps,
            )  # fmt: skip
            for (lo, hi), i, c, f in zip(windows, idx, clips, frames, strict=True)
        ]


def check_frames(arr: np.ndarray | torch.Tensor, what: str) -> None:
    """``TypeError``/``InputError`` unless ``arr`` is uint8 ``[N, H, W, 3]``/``[N, 3, H, W]``,
    N >= 1 (the raw frames of a whole video)."""
    if arr.dtype not in (np.uint8, torch.uint8):
        raise TypeError(
            f"{what}: raw frames must be uint8 [N, H, W, 3] (or float preprocessed clips "
            f"as a torch tensor), got dtype {arr.dtype}"
        )
    if arr.ndim != 4 or 3 not in (arr.shape[-1], arr.shape[1]) or 0 in arr.shape:
        raise InputError(
            f"{what}: raw frames must be uint8 [N, H, W, 3] or [N, 3, H, W] with N >= 1, "
            f"got shape {tuple(arr.shape)}"
        )
