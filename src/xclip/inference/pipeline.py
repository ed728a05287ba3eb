"""The video side of inference: videos in (through the model's
:class:`~xclip.inference.processor.VideoProcessor`), video features out, the views of several
videos sharing each model call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from xclip.errors import InputError

from ..data.video import VideoReader, find_videos
from ..model import XCLIP, VideoFeatures
from ..precision import autocast as precision_autocast
from ..precision import resolve_precision
from .accelerate import EAGER_CALLS, CompiledVideoEncoder, auto_batch_size, resolve_compile
from .device import resolve_device
from .errors import BAD_VIDEO_ERRORS, one_line_error
from .loading import load_inference_model
from .processor import PreparedVideo, VideoProcessor
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
        # the one video path (decode -> sample -> preprocess) of this model
        self.processor = VideoProcessor.for_model(
            self.model, num_clips=num_clips, num_crops=num_crops, view_mode=self.view_mode,
            decode_threads=decode_threads,
        )  # fmt: skip
        self.num_frames = self.processor.num_frames
        if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool)
        ):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
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

    def autocast(self) -> contextlib.AbstractContextManager:
        """The pipeline's precision on its device (a no-op for fp32)."""
        return precision_autocast(self.precision, self.device)

    # -- preparing inputs (the processor's steps) ----------------------------------------------
    def sample_indices(self, total: int) -> np.ndarray:
        """The frames the model sees of a video of ``total`` frames: int64 ``[num_clips, T]``."""
        return self.processor.sample_indices(total)

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[num_clips, T, H, W, 3]`` -> float ``[V, T, 3, S, S]``."""
        return self.processor.preprocess(frames)

    def open_reader(
        self, video: str | os.PathLike | bytes | bytearray | memoryview, name: str | None = None
    ) -> VideoReader:
        """A reader for a video file's path or bytes (:meth:`VideoProcessor.open`)."""
        return self.processor.open(video, name)

    def prepare(
        self, video: VideoInput, *, keep_frames: bool = False, name: str | None = None
    ) -> PreparedVideo:
        """Decode (paths, bytes), sample T frames per view and preprocess
        (:meth:`VideoProcessor.__call__`); a preprocessed clip is checked against the model."""
        prepared = self.processor(video, keep_frames=keep_frames, name=name)
        if not len(prepared.frame_indices):
            self.model.check_video(prepared.clips)  # T, channels and size of this model
        return prepared

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

    def encode_many(self, clips: Sequence[torch.Tensor]) -> list[VideoFeatures]:
        """The features of several videos' views ``[V_i, T, 3, S, S]``, computed in shared model
        calls (the views concatenated, then split per video again)."""
        if not clips:
            return []
        f = self.encode(torch.cat(list(clips)))
        sizes = [len(c) for c in clips]
        embeds = f.embeds.split(sizes)
        tokens = f.tokens.split(sizes) if f.tokens is not None else [None] * len(sizes)
        return [VideoFeatures(e, t) for e, t in zip(embeds, tokens, strict=True)]

    def encode_iter(
        self, items: Iterable[PreparedVideo | VideoFailure]
    ) -> Iterator[tuple[PreparedVideo, VideoFeatures] | VideoFailure]:
        """``(prepared, features)`` per prepared video, in order, failures passed through.

        Consecutive videos share model calls up to ``batch_size`` views (a video with more views
        runs alone, in chunks): every caller's model calls then have the sizes of whole groups,
        so a compiled encoder sees a few shapes and a single video runs exactly its own views.
        ``timings["model"]`` is the group's time shared equally."""
        group: list[PreparedVideo] = []
        n_views = 0

        def flush() -> list[tuple[PreparedVideo, VideoFeatures]]:
            t0 = time.perf_counter()
            feats = self.encode_many([g.clips for g in group])
            dt = (time.perf_counter() - t0) / len(group)
            for g in group:
                g.timings["model"] = dt
            return list(zip(group, feats, strict=True))

        for item in items:
            if isinstance(item, VideoFailure):
                # keep the order: run what is waiting before passing the failure on
                if group:
                    yield from flush()
                    group, n_views = [], 0
                yield item
                continue
            if group and n_views + len(item.clips) > self.batch_size:
                yield from flush()
                group, n_views = [], 0
            group.append(item)
            n_views += len(item.clips)
        if group:
            yield from flush()
