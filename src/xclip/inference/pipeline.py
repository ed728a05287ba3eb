"""The video side of inference: decode -> sample T frames per view -> preprocess -> encode.

The frames and preprocessing are those the weights expect: the frame count and input size come
from ``model.cfg`` and mean/std/resize from ``model.preprocess``. Sampling is the original test
sampling (the centre frame of each of T equal segments; ``num_clips > 1`` takes evenly shifted
points inside the segments) and ``num_crops=3`` takes three spatial crops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from xclip.errors import InputError

from ..data.sampling import sample_frame_indices
from ..data.transforms import EvalTransform
from ..data.video import VideoReader, find_videos, open_video
from ..model import XCLIP, VideoFeatures
from ..precision import autocast as precision_autocast
from ..precision import resolve_precision
from .accelerate import EAGER_CALLS, CompiledVideoEncoder, auto_batch_size, resolve_compile
from .device import resolve_device
from .errors import BAD_VIDEO_ERRORS, explain_decode_errors, one_line_error
from .loading import load_inference_model
from .results import VideoFailure

logger = logging.getLogger(__name__)

__all__ = ["PreparedVideo", "VideoInput", "VideoPipeline", "video_list"]

VideoInput = str | os.PathLike | bytes | np.ndarray | torch.Tensor

_ONE_VIDEO = (bytes, bytearray, memoryview, np.ndarray, torch.Tensor)


def video_list(videos: Sequence[VideoInput] | VideoInput) -> list[VideoInput]:
    """``videos`` as a list of single videos.

    A path (``str``/``PathLike``) is never iterated character by character: a file is one video
    and a folder its videos (:func:`~xclip.data.video.find_videos`); bytes, a frame array or a
    clip tensor is one video. Anything else must be a sequence of videos; an item of another
    type raises ``TypeError`` naming its position.
    """
    if isinstance(videos, str | os.PathLike):
        return list(find_videos([videos]))
    if isinstance(videos, _ONE_VIDEO):
        return [videos]
    if not isinstance(videos, Sequence):
        try:
            videos = list(videos)
        except TypeError:
            raise TypeError(
                f"videos must be a list of videos (paths, bytes, arrays), a path or one video, "
                f"got {type(videos).__name__}"
            ) from None
    out = list(videos)
    for i, v in enumerate(out):
        if not isinstance(v, (str, os.PathLike, *_ONE_VIDEO)):
            raise TypeError(
                f"videos[{i}] is a {type(v).__name__}; each video must be a path, the bytes of "
                f"a file, uint8 frames or a float clip tensor"
            )
    return out


@dataclass
class PreparedVideo:
    """A decoded, sampled and preprocessed video, ready for the model.

    ``clips``: float ``[V, T, 3, S, S]`` (V = num_clips * num_crops, crop-major);
    ``frame_indices``: int64 ``[num_clips, T]`` (empty for already preprocessed input);
    ``frames``: the sampled frames as decoded, uint8 ``[num_clips, T, H, W, 3]`` (only with
    ``keep_frames=True``); ``fps``/``num_frames``/``duration``: of the source when known.
    """

    source: str
    clips: torch.Tensor
    frame_indices: np.ndarray
    frames: np.ndarray | None = None
    fps: float | None = None
    num_frames: int | None = None
    duration: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


class VideoPipeline:
    """Videos in, video features out: the part :class:`~xclip.inference.VideoClassifier` and
    :func:`~xclip.inference.embed_videos` share.

    Args:
        model: an :class:`~xclip.XCLIP`, a checkpoint path, ``"arch.tag"`` released weights or an
            architecture name (random weights). The model is put in eval mode on ``device``.
        num_clips, num_crops: views per video (temporal clips x 1 or 3 crops).
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available).
        precision: ``"auto"`` (bf16 on CUDA, fp32 on the CPU), ``"fp32"``, ``"bf16"`` or
            ``"fp16"`` (autocast around fp32 weights).
        batch_size: views per model call (None: chosen for the device,
            :func:`~xclip.inference.accelerate.auto_batch_size`; 8 on the CPU).
        decode_threads: FFmpeg threads per video (1 = least overhead when decoding in parallel).
        compile: ``"auto"`` (on CUDA a ``torch.compile``-d video encoder for the fixed batch
            shape once a job has run 16 batches; eager on the CPU), ``True``, ``"cudagraphs"``
            or ``False`` (:mod:`xclip.inference.accelerate`).

    ``view_mode`` names the sampling of the temporal clips (see
    :func:`~xclip.data.sampling.sample_frame_indices`); result files record it with the views.
    """

    view_mode = "uniform"  # deterministic test sampling: no seed involved

    def __init__(
        self,
        model: XCLIP | str | os.PathLike,
        *,
        num_clips: int = 1,
        num_crops: int = 1,
        device: str | torch.device | None = None,
        precision: str = "auto",
        batch_size: int | None = None,
        decode_threads: int = 1,
        compile: bool | str = "auto",
    ) -> None:
        self.model_source = (
            model
            if isinstance(model, str)
            else (os.fspath(model) if isinstance(model, os.PathLike) else type(model).__name__)
        )
        self.model = load_inference_model(model)
        for key, v in (("num_clips", num_clips), ("batch_size", batch_size)):
            if key == "batch_size" and v is None:
                continue
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{key} must be an int, got {type(v).__name__}")
        if num_clips < 1:
            raise InputError(f"num_clips must be >= 1, got {num_clips}")
        if num_crops not in (1, 3):
            raise InputError(f"num_crops must be 1 or 3, got {num_crops}")
        if batch_size is not None and batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.num_clips, self.num_crops = num_clips, num_crops
        self.decode_threads = decode_threads
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        compile_mode = resolve_compile(compile, self.device)
        if compile_mode is not None and not isinstance(self.model, XCLIP):
            # an exported folder runs on its own runtime: only an XCLIP is ever compiled
            if compile is not True and compile != "cudagraphs":
                compile_mode = None  # "auto"
            else:
                raise InputError(
                    f"compile={compile!r} is for PyTorch models; {type(self.model).__name__} "
                    "runs on its own runtime (an exported folder); drop --compile"
                )
        if self.device.type == "cpu" and precision == "fp16":
            logger.warning("fp16 on the CPU is slow and gains nothing; prefer bf16 or fp32")
        self.model.eval().to(self.device)
        self.batch_size = (
            auto_batch_size(self.model, self.device, self.precision)
            if batch_size is None
            else batch_size
        )
        # the compiled encoder (None: eager); compiled lazily by torch on the first call
        self._encoder = (
            None
            if compile_mode is None
            else CompiledVideoEncoder(
                self.model,
                self.batch_size,
                compile_mode,
                eager_calls=EAGER_CALLS if compile == "auto" else 0,
            )
        )
        cfg, pre = self.model.cfg, self.model.preprocess
        if pre.num_frames != cfg.num_frames or pre.image_size != cfg.image_size:
            logger.warning(
                "model.preprocess (%d frames, %dpx) disagrees with the architecture (%d, %dpx); "
                "using the architecture's",
                pre.num_frames,
                pre.image_size,
                cfg.num_frames,
                cfg.image_size,
            )
            pre = type(pre)(cfg.num_frames, cfg.image_size, pre.mean, pre.std)
        self.num_frames = cfg.num_frames
        self.transform = EvalTransform.from_preprocess(pre, num_crops=num_crops)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The pipeline's precision on its device (a no-op for fp32)."""
        return precision_autocast(self.precision, self.device)

    # -- preparing inputs ---------------------------------------------------------------------
    def sample_indices(self, total: int) -> np.ndarray:
        """The frames the model sees of a video of ``total`` frames: int64 ``[num_clips, T]``."""
        return sample_frame_indices(
            total, self.num_frames, train=False, num_views=self.num_clips, view_mode=self.view_mode
        )  # [num_clips, T]

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[num_clips, T, H, W, 3]`` -> float ``[V, T, 3, S, S]``."""
        return self.transform(frames)

    def prepare(
        self, video: VideoInput, *, keep_frames: bool = False, name: str | None = None
    ) -> PreparedVideo:
        """Decode (paths, bytes), sample T frames per view and preprocess.

        ``video``: a path; the bytes of a video file; uint8 frames of a whole video
        ``[N, H, W, 3]`` or ``[N, 3, H, W]`` (T frames are sampled from the N); or an already
        preprocessed float clip ``[T, 3, S, S]`` / ``[V, T, 3, S, S]`` (used as is).
        """
        if isinstance(video, torch.Tensor) and video.is_floating_point():
            what = name or "<tensor>"
            clips = video.unsqueeze(0) if video.ndim == 4 else video
            if clips.ndim != 5:
                raise InputError(
                    f"{what}: a preprocessed clip must be float [T, 3, S, S] or [V, T, 3, S, S], "
                    f"got shape {tuple(video.shape)}"
                )
            self.model.check_video(clips)  # T, channels and size of this model
            if not bool(torch.isfinite(clips).all()):
                bad = int((~torch.isfinite(clips)).sum())
                raise InputError(
                    f"{what}: the clip holds {bad} NaN or infinite value(s); preprocessed clips "
                    f"must be finite (check the code that made it)"
                )
            # the model's own dtype: autocast handles bf16/fp16, float64 would fail in matmul
            return PreparedVideo(what, clips.float(), np.empty((0, 0), np.int64))
        if isinstance(video, np.ndarray | torch.Tensor):
            arr = video
            what = name or "<frames>"
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
            t0 = time.perf_counter()
            idx = self.sample_indices(int(arr.shape[0]))
            frames = arr[torch.from_numpy(idx) if isinstance(arr, torch.Tensor) else idx]
            t1 = time.perf_counter()
            clips = self.preprocess(frames)
            t2 = time.perf_counter()
            return PreparedVideo(
                what, clips, idx, frames if keep_frames else None,
                num_frames=int(arr.shape[0]), timings={"decode": t1 - t0, "preprocess": t2 - t1},
            )  # fmt: skip
        return self._prepare_file(video, keep_frames=keep_frames, name=name)

    def open_reader(
        self, video: str | os.PathLike | bytes | bytearray | memoryview, name: str | None = None
    ) -> VideoReader:
        """A reader for a video file's path or bytes (``name`` names bytes in messages).

        ``FileNotFoundError``/``IsADirectoryError`` (file-system errors: a batch records them as
        failed videos), :class:`~xclip.data.video.VideoDecodeError` from the decoder, and
        ``TypeError`` for what cannot be a video file (a caller's mistake: it propagates)."""
        if isinstance(video, bytes | bytearray | memoryview):
            return open_video(bytes(video), name=name or "<bytes>", num_threads=self.decode_threads)
        if not isinstance(video, str | os.PathLike):
            raise TypeError(
                f"video must be a path, bytes, uint8 frames or a float clip tensor, got "
                f"{type(video).__name__}"
            )
        path = os.fspath(video)
        if not os.path.exists(path):
            raise FileNotFoundError(f"video not found: {path}")
        if os.path.isdir(path):
            raise IsADirectoryError(
                f"{path} is a folder, not a video; pass its videos (find_videos) or use "
                f"classify_many"
            )
        return open_video(path, num_threads=self.decode_threads)

    def _prepare_file(self, video, *, keep_frames: bool, name: str | None) -> PreparedVideo:
        t0 = time.perf_counter()
        with explain_decode_errors(), self.open_reader(video, name) as reader:
            meta = reader.metadata
            idx = self.sample_indices(reader.num_frames)
            frames = _get_views(reader, idx)  # uint8 [num_clips, T, H, W, 3]
        t1 = time.perf_counter()
        clips = self.preprocess(frames)
        t2 = time.perf_counter()
        return PreparedVideo(
            name or (os.fspath(video) if isinstance(video, str | os.PathLike) else "<bytes>"),
            clips, idx, frames if keep_frames else None,
            fps=meta.fps, num_frames=meta.num_frames, duration=meta.duration,
            timings={"decode": t1 - t0, "preprocess": t2 - t1},
        )  # fmt: skip

    def prepare_iter(
        self, videos: Sequence[VideoInput], *, keep_frames: bool = False, workers: int = 1
    ) -> Iterator[tuple[int, PreparedVideo | VideoFailure]]:
        """``(i, prepared video or failure)`` per video, in order, prepared by ``workers``
        background threads working ahead of the caller (decoding releases the GIL; ``workers=0``
        prepares in the calling thread).

        Only the decoder's and the file system's errors become a :class:`VideoFailure`; any other
        exception (a bug in a transform, out of memory, an input of the wrong type) is raised
        here, in the caller's thread."""
        videos = video_list(videos)

        def job(i: int) -> PreparedVideo | VideoFailure:
            try:
                return self.prepare(videos[i], keep_frames=keep_frames)
            except BAD_VIDEO_ERRORS as e:
                src = (
                    os.fspath(videos[i])
                    if isinstance(videos[i], str | os.PathLike)
                    else f"<input {i}>"
                )
                msg = one_line_error(e)
                if msg.startswith(f"{src}: "):  # the failure record names the file already
                    msg = msg[len(src) + 2 :]
                return VideoFailure(src, msg)

        if workers <= 0:
            for i in range(len(videos)):
                yield i, job(i)
            return
        # not a torch DataLoader: its worker processes start per call and pickle every input
        # (uploaded bytes, frame arrays); decoding releases the GIL, so threads suffice
        lookahead = max(2, 2 * workers)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xclip-decode") as pool:
            pending: OrderedDict[int, Future] = OrderedDict()
            nxt = 0
            for i in range(len(videos)):
                while nxt < len(videos) and len(pending) < lookahead:
                    pending[nxt] = pool.submit(job, nxt)
                    nxt += 1
                yield i, pending.pop(i).result()

    # -- running the model --------------------------------------------------------------------
    def encode(self, clips: torch.Tensor) -> VideoFeatures:
        """float ``[N, T, 3, S, S]`` -> features of the N views, in chunks of ``batch_size``
        (through the compiled encoder when the pipeline has one)."""
        embeds, tokens = [], []
        if self.device.type == "cuda" and clips.device.type == "cpu" and not clips.is_pinned():
            clips = clips.pin_memory()  # the copies below then overlap with the model's kernels
        encode = self.model.encode_video if self._encoder is None else self._encoder
        with torch.inference_mode(), self.autocast():
            for chunk in clips.split(self.batch_size):
                f = encode(chunk.to(self.device, non_blocking=True))
                embeds.append(f.embeds)
                if f.tokens is not None:
                    tokens.append(f.tokens)
        return VideoFeatures(torch.cat(embeds), torch.cat(tokens) if tokens else None)


def _get_views(reader: VideoReader, idx: np.ndarray) -> np.ndarray:
    frames = reader.get_frames(idx.reshape(-1))  # [V*T, H, W, 3]
    return frames.reshape(*idx.shape, *frames.shape[1:])  # [V, T, H, W, 3]
