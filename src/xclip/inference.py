"""Inference for users: label videos with your own words, timelines of long videos, retrieval.

>>> clf = VideoClassifier(model, ["riding a bike", "cooking", "dancing"], template="a video of {}")
>>> pred = clf("video.mp4")          # decode -> sample T frames -> preprocess -> model
>>> pred.label, pred.prob            # best label and its probability
>>> pred.top(3)                      # [(label, prob), ...] best first

The class-text features of the label set are computed once and cached, so each further video
costs only the video side (decode, preprocess, vision tower + MIT + prompt generator).

The frames and preprocessing are those the weights expect: the frame count and input size come
from ``model.cfg`` and mean/std/resize from ``model.preprocess`` (which travels with a weights
tag or a saved model directory). Sampling is the original test sampling: the centre frame of
each of T equal segments; ``num_clips > 1`` takes evenly shifted points inside the segments
(deterministic) and ``num_crops=3`` three spatial crops. Probabilities are the softmax over the
labels, averaged over the views, as the original multi-view test.

Videos with fewer frames than the model takes are not an error: the sampler repeats frames
(``int((i + 0.5) * n / T)``), exactly as the original test pipeline does.

Retrieval: :func:`embed_videos` builds a :class:`VideoIndex` (video embeddings, optionally the
prompt generator's visual tokens and class-text embeddings; saved as ``.safetensors`` or
``.npy`` + ``.json``), and :func:`search` ranks the indexed videos for a text query. X-CLIP's text
embedding is video-conditioned, so the default score (``method="prompted"``) is the model's own
score per (video, query): the cosine between the video embedding and the query embedding plus
its video-specific prompt - what the model's logits are made of (divided by the logit scale).
``method="cosine"`` is the cheap alternative (plain cosine of video embeddings and raw text
embeddings; works with an index saved without tokens).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .config import list_models
from .data.video.files import VIDEO_EXTENSIONS, find_videos
from .model import XCLIP, VideoFeatures
from .tokenizer import tokenize

logger = logging.getLogger(__name__)

__all__ = [
    "INDEX_FORMAT",
    "VIDEO_EXTENSIONS",
    "PreparedVideo",
    "Prediction",
    "SearchHit",
    "VideoClassifier",
    "VideoFailure",
    "VideoIndex",
    "check_labels",
    "embed_videos",
    "find_videos",
    "load_index",
    "load_inference_model",
    "model_fingerprint",
    "search",
]

INDEX_FORMAT = "xclip-video-index"
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

VideoInput = str | os.PathLike | bytes | np.ndarray | torch.Tensor


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """Ranked labels for one video (or one window of it with ``start``/``end`` in seconds).

    ``labels``/``probs`` are sorted best first; ``probs`` sum to 1 over the whole label set.
    ``frame_indices`` are the frames the model saw (``[num_clips][T]``), ``timings`` the seconds
    spent per stage (``decode``, ``preprocess``, ``model``).
    """

    labels: tuple[str, ...]
    probs: tuple[float, ...]
    source: str = ""
    start: float | None = None
    end: float | None = None
    frame_indices: tuple[tuple[int, ...], ...] = ()
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        """The best label."""
        return self.labels[0]

    @property
    def prob(self) -> float:
        """The best label's probability."""
        return self.probs[0]

    def top(self, k: int | None = None) -> list[tuple[str, float]]:
        """``[(label, prob), ...]``, best first (all labels when ``k`` is None)."""
        n = len(self.labels) if k is None else max(0, k)
        return list(zip(self.labels[:n], self.probs[:n], strict=True))

    def to_dict(self, k: int | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"video": self.source}
        if self.start is not None:
            d["start"] = round(self.start, 3)
            d["end"] = round(self.end or 0.0, 3)
        d["predictions"] = [{"label": lb, "prob": round(p, 6)} for lb, p in self.top(k)]
        return d


@dataclass(frozen=True)
class VideoFailure:
    """A video that could not be processed, and why (one line)."""

    source: str
    error: str

    def to_dict(self) -> dict[str, str]:
        return {"video": self.source, "error": self.error}


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


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _label_key(label: str) -> str:
    # The CLIP tokenizer lower-cases and collapses whitespace, so these labels are the same text.
    return " ".join(label.lower().split())


def check_labels(labels: Iterable[str]) -> list[str]:
    """Stripped labels, or ``ValueError`` for an empty set, an empty label or duplicates.

    Labels that differ only in case or spacing count as duplicates: the tokenizer lower-cases
    and collapses whitespace, so they would get identical embeddings and split the probability.
    """
    if isinstance(labels, str):
        raise TypeError("labels must be a list of strings, not one string (split it first)")
    out = [str(lb).strip() for lb in labels]
    if not out:
        raise ValueError("no labels given; give at least two label texts, e.g. 'cooking,dancing'")
    empty = [i + 1 for i, lb in enumerate(out) if not lb]
    if empty:
        raise ValueError(f"label(s) at position {empty} are empty; remove them")
    seen: dict[str, int] = {}
    dups = []
    for i, lb in enumerate(out):
        key = _label_key(lb)
        if key in seen:
            dups.append(f"{lb!r} (positions {seen[key] + 1} and {i + 1})")
        else:
            seen[key] = i
    if dups:
        raise ValueError(
            f"duplicate labels: {', '.join(dups)}; give each label once (case and spacing are "
            f"ignored by the tokenizer)"
        )
    if len(out) == 1:
        logger.warning("only one label given: its probability is always 1; add alternatives")
    return out


def _check_template(template: str) -> str:
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(
            f"template must contain '{{}}' exactly once, where the label goes "
            f"(e.g. 'a video of a person {{}}'), got {template!r}"
        )
    return template


def load_inference_model(
    source: XCLIP | str | os.PathLike,
    *,
    num_frames: int | None = None,
    image_size: int | None = None,
    interpolate: bool = False,
) -> XCLIP:
    """A model for inference from an :class:`XCLIP`, an architecture name (random weights, for
    trying the pipeline), ``"arch.tag"`` released weights (downloaded on first use) or a path.

    The frame count and image size come from the checkpoint. ``num_frames``/``image_size`` that
    differ from it raise ``ValueError`` unless ``interpolate=True``, which adapts the position
    embeddings (accuracy changes until fine-tuned).
    """
    from .checkpoint import CheckpointError
    from .factory import create_model, load_model

    if isinstance(source, XCLIP):
        model = source
    else:
        s = os.fspath(source)
        if s in list_models():
            logger.warning("%s: random weights (an architecture name, not a checkpoint)", s)
            model = create_model(s)
        else:
            p = Path(s)
            if not p.exists():
                arch = s.split(".", 1)[0]
                if "." in p.name and "/" not in s and arch in list_models():
                    model = load_model(s)  # released weights, downloaded and cached
                else:
                    raise CheckpointError(
                        f"model {s!r} is not a file or folder, an architecture name or an "
                        f"ARCH.TAG weights name; give a checkpoint path, e.g. a folder written by "
                        f"xclip.save_model, or a released weights name such as "
                        f"xclip_b16_32f.zero_shot (see `xclip-video pretrained`)"
                    )
            else:
                model = load_model(p)
    cfg = model.cfg
    wants = {"num_frames": num_frames, "image_size": image_size}
    diff = {k: v for k, v in wants.items() if v is not None and v != getattr(cfg, k)}
    if diff:
        what = ", ".join(f"{k}={v} (the model has {getattr(cfg, k)})" for k, v in diff.items())
        if not interpolate or isinstance(source, XCLIP):
            raise ValueError(
                f"the model was trained for {cfg.num_frames} frames at {cfg.image_size}px but "
                f"{what} was requested; leave the option out (the model's values are used "
                f"automatically)"
                + (
                    ""
                    if isinstance(source, XCLIP)
                    else " or add --interpolate to adapt the "
                    "checkpoint (accuracy changes until fine-tuned)"
                )
            )
        s = os.fspath(source)
        model = create_model(s, **diff) if s in list_models() else load_model(s, **diff)
    return model


def model_fingerprint(model: XCLIP) -> str:
    """A short hash of a few weight tensors: tells whether two models have the same weights."""
    sd = model.state_dict()
    h = hashlib.sha256()
    for key in ("text_projection", "visual.proj", "visual.conv1.weight", "logit_scale"):
        if key in sd:
            t = sd[key].detach().to("cpu", torch.float32).contiguous()
            h.update(key.encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def _model_info(model: XCLIP, source: str) -> dict[str, Any]:
    from .config import registered_name

    return {
        "source": source,
        "architecture": registered_name(model.cfg),
        "fingerprint": model_fingerprint(model),
        "config": model.cfg.to_dict(),
        "preprocess": model.preprocess.to_dict(),
    }


def _short_error(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg


# --------------------------------------------------------------------------------------------
# the pipeline: decode -> sample -> preprocess -> model
# --------------------------------------------------------------------------------------------


class _Pipeline:
    """Shared by :class:`VideoClassifier` and :func:`embed_videos`."""

    def __init__(
        self,
        model: XCLIP | str | os.PathLike,
        *,
        num_clips: int = 1,
        num_crops: int = 1,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        batch_size: int = 8,
        decode_threads: int = 1,
    ) -> None:
        from .data.transforms import EvalTransform

        self.model_source = (
            model
            if isinstance(model, str)
            else (os.fspath(model) if isinstance(model, os.PathLike) else type(model).__name__)
        )
        self.model = load_inference_model(model)
        if num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {num_clips}")
        if num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.num_clips, self.num_crops = num_clips, num_crops
        self.batch_size = batch_size
        self.precision = precision
        self.decode_threads = decode_threads
        self.device = _resolve_device(device)
        if self.device.type == "cpu" and precision == "fp16":
            logger.warning("fp16 on the CPU is slow and gains nothing; prefer bf16 or fp32")
        self.model.eval().to(self.device)
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

    # -- precision --------------------------------------------------------------------------
    def _autocast(self):
        dtype = PRECISIONS[self.precision]
        if dtype is torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # -- preparing inputs ---------------------------------------------------------------------
    def _indices(self, total: int) -> np.ndarray:
        from .data.sampling import sample_frame_indices

        return sample_frame_indices(
            total, self.num_frames, train=False, num_views=self.num_clips, view_mode="uniform"
        )  # [num_clips, T]

    def _preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
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
            clips = video.unsqueeze(0) if video.ndim == 4 else video
            if clips.ndim != 5:
                raise ValueError(
                    f"a preprocessed clip must be float [T, 3, S, S] or [V, T, 3, S, S], got "
                    f"shape {tuple(video.shape)}"
                )
            return PreparedVideo(name or "<tensor>", clips, np.empty((0, 0), np.int64))
        if isinstance(video, np.ndarray | torch.Tensor):
            arr = video
            if arr.dtype not in (np.uint8, torch.uint8):
                raise TypeError(
                    f"raw frames must be uint8 [N, H, W, 3] (or float preprocessed clips as a "
                    f"torch tensor), got dtype {arr.dtype}"
                )
            if arr.ndim != 4:
                raise ValueError(
                    f"raw frames must be uint8 [N, H, W, 3] or [N, 3, H, W], got shape "
                    f"{tuple(arr.shape)}"
                )
            t0 = time.perf_counter()
            idx = self._indices(int(arr.shape[0]))
            frames = arr[torch.from_numpy(idx) if isinstance(arr, torch.Tensor) else idx]
            t1 = time.perf_counter()
            clips = self._preprocess(frames)
            t2 = time.perf_counter()
            return PreparedVideo(
                name or "<frames>", clips, idx, frames if keep_frames else None,
                num_frames=int(arr.shape[0]), timings={"decode": t1 - t0, "preprocess": t2 - t1},
            )  # fmt: skip
        return self._prepare_file(video, keep_frames=keep_frames, name=name)

    def _open(self, video, name: str | None):
        from .data.video import open_video

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
            raise ValueError(f"{path} is a folder; use classify_many / find_videos for folders")
        return open_video(path, num_threads=self.decode_threads)

    def _prepare_file(self, video, *, keep_frames: bool, name: str | None) -> PreparedVideo:
        t0 = time.perf_counter()
        with _decode_errors(video, name), self._open(video, name) as reader:
            meta = reader.metadata
            idx = self._indices(reader.num_frames)
            frames = _get_views(reader, idx)  # uint8 [num_clips, T, H, W, 3]
        t1 = time.perf_counter()
        clips = self._preprocess(frames)
        t2 = time.perf_counter()
        return PreparedVideo(
            name or (os.fspath(video) if isinstance(video, str | os.PathLike) else "<bytes>"),
            clips, idx, frames if keep_frames else None,
            fps=meta.fps, num_frames=meta.num_frames, duration=meta.duration,
            timings={"decode": t1 - t0, "preprocess": t2 - t1},
        )  # fmt: skip

    # -- running the model --------------------------------------------------------------------
    def _encode(self, clips: torch.Tensor) -> VideoFeatures:
        """float ``[N, T, 3, S, S]`` -> features of the N views, in chunks of ``batch_size``."""
        embeds, tokens = [], []
        with torch.inference_mode(), self._autocast():
            for chunk in clips.split(self.batch_size):
                f = self.model.encode_video(chunk.to(self.device, non_blocking=True))
                embeds.append(f.embeds)
                if f.tokens is not None:
                    tokens.append(f.tokens)
        return VideoFeatures(torch.cat(embeds), torch.cat(tokens) if tokens else None)

    def _prepare_iter(
        self, videos: Sequence[VideoInput], keep_frames: bool = False, workers: int = 1
    ) -> Iterator[tuple[int, PreparedVideo | VideoFailure]]:
        """Prepare videos in a background thread pool (decoding releases the GIL), in order."""

        def job(i: int):
            try:
                return self.prepare(videos[i], keep_frames=keep_frames)
            except (OSError, ValueError, TypeError, RuntimeError) as e:
                src = (
                    os.fspath(videos[i])
                    if isinstance(videos[i], str | os.PathLike)
                    else f"<input {i}>"
                )
                msg = _short_error(e)
                if msg.startswith(f"{src}: "):  # the failure record names the file already
                    msg = msg[len(src) + 2 :]
                return VideoFailure(src, msg)

        if workers <= 0:
            for i in range(len(videos)):
                yield i, job(i)
            return
        lookahead = max(2, 2 * workers)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xclip-decode") as pool:
            pending: OrderedDict[int, Future] = OrderedDict()
            nxt = 0
            for i in range(len(videos)):
                while nxt < len(videos) and len(pending) < lookahead:
                    pending[nxt] = pool.submit(job, nxt)
                    nxt += 1
                yield i, pending.pop(i).result()


def _get_views(reader, idx: np.ndarray) -> np.ndarray:
    frames = reader.get_frames(idx.reshape(-1))  # [V*T, H, W, 3]
    return frames.reshape(*idx.shape, *frames.shape[1:])  # [V, T, H, W, 3]


@contextlib.contextmanager
def _decode_errors(video, name: str | None):
    """Turn decoder errors into one-line ``ValueError``s that name the file and the fix."""
    from .data.video import VideoDecodeError

    try:
        yield
    except VideoDecodeError as e:
        raise ValueError(
            f"{e.path}: not a readable video ({e.reason}); check that it plays in a video player "
            f"or re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`"
        ) from None


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"invalid device {device!r}: {_short_error(e)}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev


# --------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------


class VideoClassifier(_Pipeline):
    """Zero-shot / open-set video classification with your own label texts.

    Args:
        model: an :class:`~xclip.XCLIP`, a checkpoint path, ``"arch.tag"`` released weights or an
            architecture name (random weights). The model is put in eval mode on ``device``.
        labels: the label texts (validated by :func:`check_labels`).
        template: prompt with ``{}`` where the label goes, e.g. ``"a video of a person {}"``.
        num_clips, num_crops: views per video (temporal clips x 1 or 3 crops); probabilities are
            averaged over views.
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; softmax in fp32).
        batch_size: views per model call.
        decode_threads: FFmpeg threads per video (1 = least overhead when decoding in parallel).

    ``__call__(video, labels=None)`` returns a :class:`Prediction`; other ``labels`` for one call
    (and ``template``) are allowed; their text features are cached too (up to 32 label sets).
    """

    def __init__(
        self,
        model: XCLIP | str | os.PathLike,
        labels: Sequence[str],
        template: str = "{}",
        *,
        num_clips: int = 1,
        num_crops: int = 1,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        batch_size: int = 8,
        decode_threads: int = 1,
    ) -> None:
        super().__init__(
            model, num_clips=num_clips, num_crops=num_crops, device=device,
            precision=precision, batch_size=batch_size, decode_threads=decode_threads,
        )  # fmt: skip
        self.template = _check_template(template)
        self.labels = check_labels(labels)
        self._text_cache: OrderedDict[tuple[str, ...], torch.Tensor] = OrderedDict()
        self.text_features(self.labels)  # computed once, now

    def text_features(
        self, labels: Sequence[str] | None = None, template: str | None = None
    ) -> torch.Tensor:
        """Class-text features ``[K, C]`` of ``labels`` (default: the classifier's) with the
        template (default: the classifier's) applied; cached per (template, label set)."""
        labels = self.labels if labels is None else check_labels(labels)
        template = self.template if template is None else _check_template(template)
        key = (template, *labels)
        feats = self._text_cache.get(key)
        if feats is None:
            tokens = tokenize([template.replace("{}", lb) for lb in labels])
            with torch.inference_mode(), self._autocast():
                feats = self.model.encode_text(tokens.to(self.device))
            self._text_cache[key] = feats
            while len(self._text_cache) > 32:
                self._text_cache.popitem(last=False)
        else:
            self._text_cache.move_to_end(key)
        return feats

    def _probs(self, feats: VideoFeatures, text: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self._autocast():
            logits = self.model.logits(feats, text)  # [V, K]
        return logits.float().softmax(dim=-1)

    def _ranked(
        self, probs: torch.Tensor, labels: list[str], prepared: PreparedVideo, **kw: Any
    ) -> Prediction:
        p = probs.mean(dim=0).cpu()  # [K], the original averages softmax over views
        order = p.argsort(descending=True).tolist()
        return Prediction(
            labels=tuple(labels[k] for k in order),
            probs=tuple(float(p[k]) for k in order),
            source=prepared.source,
            frame_indices=tuple(tuple(int(i) for i in row) for row in prepared.frame_indices),
            timings=dict(prepared.timings),
            **kw,
        )

    def predict(
        self,
        prepared: PreparedVideo,
        labels: Sequence[str] | None = None,
        template: str | None = None,
    ) -> Prediction:
        """Classify a :class:`PreparedVideo` (from :meth:`prepare`), optionally with other
        ``labels``/``template`` than the classifier's (their text features are cached too)."""
        labels = self.labels if labels is None else check_labels(labels)
        text = self.text_features(labels, template)
        t0 = time.perf_counter()
        probs = self._probs(self._encode(prepared.clips), text)
        prepared.timings["model"] = time.perf_counter() - t0
        return self._ranked(probs, labels, prepared)

    def __call__(
        self, video: VideoInput, labels: Sequence[str] | None = None, template: str | None = None
    ) -> Prediction:
        """Classify one video: a path, bytes of a file, uint8 frames ``[N, H, W, 3]`` or a
        preprocessed float clip ``[T, 3, S, S]``/``[V, T, 3, S, S]``."""
        return self.predict(self.prepare(video), labels, template)

    def classify_iter(
        self, videos: Sequence[VideoInput], *, workers: int = 1
    ) -> Iterator[Prediction | VideoFailure]:
        """Classify many videos, yielding a :class:`Prediction` or :class:`VideoFailure` per
        video, in order. Decoding runs ``workers`` threads ahead of the model; the views of
        several videos share one model call (up to ``batch_size`` views)."""
        text = self.text_features()
        group: list[PreparedVideo] = []
        n_views = 0

        def flush() -> Iterator[Prediction]:
            t0 = time.perf_counter()
            probs = self._probs(self._encode(torch.cat([g.clips for g in group])), text)
            dt = (time.perf_counter() - t0) / len(group)
            out = []
            for g, p in zip(group, probs.split([len(g.clips) for g in group]), strict=True):
                g.timings["model"] = dt
                out.append(self._ranked(p, self.labels, g))
            return iter(out)

        for _, item in self._prepare_iter(videos, workers=workers):
            if isinstance(item, VideoFailure):
                # keep the output order: classify what is waiting before reporting the failure
                if group:
                    yield from flush()
                    group, n_views = [], 0
                logger.debug("skipping %s: %s", item.source, item.error)
                yield item
                continue
            if group and n_views + len(item.clips) > self.batch_size:
                yield from flush()
                group, n_views = [], 0
            group.append(item)
            n_views += len(item.clips)
        if group:
            yield from flush()

    def classify_many(
        self,
        videos: Sequence[VideoInput] | str | os.PathLike,
        *,
        workers: int = 1,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> tuple[list[Prediction], list[VideoFailure]]:
        """Classify a list of videos (or a folder): ``(predictions, failures)``. Unreadable
        videos are logged, skipped and listed in ``failures``; ``progress(done, total, source)``
        is called after each video."""
        if isinstance(videos, str | os.PathLike):
            videos = find_videos([videos])
        preds: list[Prediction] = []
        fails: list[VideoFailure] = []
        for i, r in enumerate(self.classify_iter(videos, workers=workers)):
            (fails if isinstance(r, VideoFailure) else preds).append(r)
            if progress is not None:
                progress(i + 1, len(videos), r.source)
        return preds, fails

    # -- long videos --------------------------------------------------------------------------
    def timeline(
        self,
        video: str | os.PathLike | bytes | np.ndarray | torch.Tensor,
        window: float,
        stride: float | None = None,
        *,
        fps: float | None = None,
        labels: Sequence[str] | None = None,
    ) -> list[Prediction]:
        """Predictions per time window of a long video (``window``/``stride`` in seconds; the
        default stride is the window). Windows start every ``stride`` seconds; the last one ends
        at the end of the video (it may be shorter); a video shorter than one window gives one
        window over the whole video. Each window is classified like a whole video (T frames at
        its segment centres). uint8 frames ``[N, H, W, 3]`` need ``fps``.
        Times use the average frame rate of the file (``num_frames / duration``)."""
        stride = window if stride is None else stride
        if not window > 0 or not stride > 0:
            raise ValueError(f"window and stride must be > 0 seconds, got {window} and {stride}")
        labels = self.labels if labels is None else check_labels(labels)
        text = self.text_features(labels)
        if isinstance(video, np.ndarray | torch.Tensor):
            if fps is None or fps <= 0:
                raise ValueError("timeline() of raw frames needs their frame rate: fps=...")
            if video.dtype not in (np.uint8, torch.uint8) or video.ndim != 4:
                raise ValueError("timeline() takes uint8 frames [N, H, W, 3]")
            source, reader_cm = "<frames>", contextlib.nullcontext(None)
            total = int(video.shape[0])
        else:
            source = os.fspath(video) if isinstance(video, str | os.PathLike) else "<bytes>"
            reader_cm = _decode_errors(video, None)
        results: list[Prediction] = []
        with reader_cm:
            reader = None if source == "<frames>" else self._open(video, None)
            try:
                if reader is not None:
                    fps, total = reader.metadata.fps, reader.num_frames
                assert fps is not None
                windows = _windows(total, fps, window, stride)
                per_call = max(1, self.batch_size // (self.num_clips * self.num_crops))
                for c in range(0, len(windows), per_call):
                    chunk = windows[c : c + per_call]
                    t0 = time.perf_counter()
                    idx = [lo + self._indices(hi - lo) for lo, hi in chunk]  # [num_clips, T] each
                    flat = np.concatenate([i.reshape(-1) for i in idx])
                    if reader is not None:
                        frames = reader.get_frames(flat)
                    else:
                        frames = video[
                            torch.from_numpy(flat) if isinstance(video, torch.Tensor) else flat
                        ]
                    t1 = time.perf_counter()
                    frames = frames.reshape(len(chunk), *idx[0].shape, *frames.shape[1:])
                    clips = torch.cat([self._preprocess(f) for f in frames])  # [W*V, T, 3, S, S]
                    t2 = time.perf_counter()
                    probs = self._probs(self._encode(clips), text)
                    t3 = time.perf_counter()
                    n = len(chunk)
                    timings = {
                        "decode": (t1 - t0) / n,
                        "preprocess": (t2 - t1) / n,
                        "model": (t3 - t2) / n,
                    }
                    for (lo, hi), i, p in zip(
                        chunk, idx, probs.split(len(probs) // n), strict=True
                    ):
                        prep = PreparedVideo(source, clips[:0], i, timings=timings)
                        results.append(self._ranked(p, labels, prep, start=lo / fps, end=hi / fps))
            finally:
                if reader is not None:
                    reader.close()
        return results


def _windows(total: int, fps: float, window: float, stride: float) -> list[tuple[int, int]]:
    """Frame ranges ``[lo, hi)`` of the windows (see :meth:`VideoClassifier.timeline`)."""
    duration = total / fps
    out: list[tuple[int, int]] = []
    k = 0
    while True:
        start = k * stride
        if start >= duration - 1e-9 and out:
            break
        lo = min(int(round(start * fps)), total - 1)
        hi = max(lo + 1, min(int(round((start + window) * fps)), total))
        out.append((lo, hi))
        if hi >= total:
            break
        k += 1
    return out


# --------------------------------------------------------------------------------------------
# embeddings and retrieval
# --------------------------------------------------------------------------------------------


@dataclass
class VideoIndex:
    """Video embeddings for retrieval.

    ``embeds``: float32 ``[N, C]`` video embeddings (MIT output, not normalised; averaged over
    views); ``tokens``: ``[N, P, C]`` the prompt generator's visual tokens (``None`` in a compact
    index: then only ``method="cosine"`` search works); ``text_embeds``: ``[K, C]`` raw
    class-text embeddings of ``labels`` when given; ``model``: which model made it (source,
    architecture, config, preprocess and a weights fingerprint).
    """

    paths: list[str]
    embeds: torch.Tensor
    tokens: torch.Tensor | None = None
    labels: list[str] | None = None
    text_embeds: torch.Tensor | None = None
    template: str = "{}"
    model: dict[str, Any] = field(default_factory=dict)
    failures: list[VideoFailure] = field(default_factory=list)
    num_clips: int = 1
    num_crops: int = 1

    def __len__(self) -> int:
        return len(self.paths)

    def _meta(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "format_version": 1,
            "paths": self.paths,
            "labels": self.labels,
            "template": self.template,
            "model": self.model,
            "num_clips": self.num_clips,
            "num_crops": self.num_crops,
            "failures": [f.to_dict() for f in self.failures],
            "has_tokens": self.tokens is not None,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``FILE.safetensors`` (tensors + metadata in one file) or ``FILE.npy`` (the
        embeddings; metadata in ``FILE.json``, tokens in ``FILE.tokens.npy``, class-text
        embeddings in ``FILE.text.npy``). Tokens are stored as float16 (half the size)."""
        from .checkpoint import atomic_write, save_json

        path = Path(path)
        tensors = {"embeds": self.embeds.float().cpu().contiguous()}
        if self.tokens is not None:
            tensors["tokens"] = self.tokens.half().cpu().contiguous()
        if self.text_embeds is not None:
            tensors["text_embeds"] = self.text_embeds.float().cpu().contiguous()
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            meta = {"xclip_index": json.dumps(self._meta())}
            atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
        elif path.suffix == ".npy":
            for key, suffix in (("tokens", ".tokens.npy"), ("text_embeds", ".text.npy")):
                if key in tensors:
                    arr = tensors[key].numpy()
                    atomic_write(_sidecar(path, suffix), lambda tmp, a=arr: _np_save(tmp, a))
            arr = tensors["embeds"].numpy()
            atomic_write(path, lambda tmp: _np_save(tmp, arr))
            save_json(self._meta(), _sidecar(path, ".json"))
        else:
            raise ValueError(f"index file must end in .safetensors or .npy, got {path.name!r}")
        return path

    def check_model(self, model: XCLIP) -> None:
        """``ValueError`` unless ``model`` has the weights this index was built with."""
        want = self.model.get("fingerprint")
        have = model_fingerprint(model)
        if want and want != have:
            raise ValueError(
                f"the index was built with other model weights ({self.model.get('source')}, "
                f"fingerprint {want}) than the given model (fingerprint {have}); search with the "
                f"same model as embed, or rebuild the index"
            )


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name[: -len(".npy")] + suffix)


def _np_save(tmp: str, arr: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)


def load_index(path: str | os.PathLike) -> VideoIndex:
    """Read an index written by :meth:`VideoIndex.save`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"index file not found: {path} (write one with `xclip-video embed`)"
        )
    bad = f"{path} is not an xclip video index (written by `xclip-video embed`)"
    tokens = text = None
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["xclip_index"])
                keys = set(f.keys())
                embeds = f.get_tensor("embeds")
                tokens = f.get_tensor("tokens") if "tokens" in keys else None
                text = f.get_tensor("text_embeds") if "text_embeds" in keys else None
        elif path.suffix == ".npy":
            meta_path = _sidecar(path, ".json")
            if not meta_path.is_file():
                raise ValueError(f"{bad}: {meta_path.name} is missing next to it")
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            embeds = torch.from_numpy(np.load(path, allow_pickle=False))
            tp, xp = _sidecar(path, ".tokens.npy"), _sidecar(path, ".text.npy")
            if meta.get("has_tokens"):
                tokens = torch.from_numpy(np.load(tp, allow_pickle=False))
            if xp.is_file() and meta.get("labels"):
                text = torch.from_numpy(np.load(xp, allow_pickle=False))
        else:
            raise ValueError(f"index file must end in .safetensors or .npy, got {path.name!r}")
    except ValueError:
        raise
    except Exception as e:  # corrupt file, missing metadata key, bad JSON
        raise ValueError(f"{bad} ({type(e).__name__}: {_short_error(e)})") from None
    if meta.get("format") != INDEX_FORMAT:
        raise ValueError(bad)
    paths = list(meta["paths"])
    if embeds.ndim != 2 or embeds.shape[0] != len(paths):
        raise ValueError(f"{path}: {embeds.shape[0]} embeddings for {len(paths)} paths; rebuild it")
    return VideoIndex(
        paths=paths,
        embeds=embeds.float(),
        tokens=None if tokens is None else tokens.float(),
        labels=meta.get("labels"),
        text_embeds=None if text is None else text.float(),
        template=meta.get("template", "{}"),
        model=meta.get("model", {}),
        failures=[VideoFailure(f["video"], f["error"]) for f in meta.get("failures", [])],
        num_clips=int(meta.get("num_clips", 1)),
        num_crops=int(meta.get("num_crops", 1)),
    )


def embed_videos(
    model: XCLIP | str | os.PathLike,
    videos: Sequence[VideoInput],
    *,
    labels: Sequence[str] | None = None,
    template: str = "{}",
    keep_tokens: bool = True,
    num_clips: int = 1,
    num_crops: int = 1,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    batch_size: int = 8,
    workers: int = 1,
    progress: Callable[[int, int, str], None] | None = None,
    model_name: str | None = None,
) -> VideoIndex:
    """Embed videos into a :class:`VideoIndex` (unreadable ones are skipped and listed in
    ``index.failures``). With ``labels`` the raw class-text embeddings are stored too.
    ``keep_tokens=False`` makes a compact index (only ``method="cosine"`` search).
    ``model_name`` is recorded as the model's source (default: ``model`` when it is a name or
    path), so that ``xclip-video search`` can reload the same model."""
    pipe = _Pipeline(
        model, num_clips=num_clips, num_crops=num_crops, device=device, precision=precision,
        batch_size=batch_size,
    )  # fmt: skip
    source = model_name or pipe.model_source
    paths: list[str] = []
    embeds: list[torch.Tensor] = []
    tokens: list[torch.Tensor] = []
    fails: list[VideoFailure] = []
    for i, item in pipe._prepare_iter(videos, workers=workers):
        if isinstance(item, VideoFailure):
            logger.debug("skipping %s: %s", item.source, item.error)
            fails.append(item)
        else:
            f = pipe._encode(item.clips)
            paths.append(item.source)
            embeds.append(f.embeds.float().mean(dim=0).cpu())  # views averaged
            if keep_tokens and f.tokens is not None:
                tokens.append(f.tokens.float().mean(dim=0).cpu())
        if progress is not None:
            progress(
                i + 1, len(videos), paths[-1] if not isinstance(item, VideoFailure) else item.source
            )
    c = pipe.model.cfg.embed_dim
    text = None
    if labels is not None:
        labels = check_labels(labels)
        _check_template(template)
        with torch.inference_mode(), pipe._autocast():
            text = (
                pipe.model.encode_text(
                    tokenize([template.replace("{}", lb) for lb in labels]).to(pipe.device)
                )
                .float()
                .cpu()
            )
    return VideoIndex(
        paths=paths,
        embeds=torch.stack(embeds) if embeds else torch.empty(0, c),
        tokens=torch.stack(tokens) if tokens else None,
        labels=list(labels) if labels is not None else None,
        text_embeds=text,
        template=template,
        model=_model_info(pipe.model, source),
        failures=fails,
        num_clips=num_clips,
        num_crops=num_crops,
    )


@dataclass(frozen=True)
class SearchHit:
    """One retrieved video: ``rank`` (1 = best), ``path`` and ``score`` (a cosine, -1..1)."""

    rank: int
    path: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "video": self.path, "score": round(self.score, 6)}


def search(
    query: str,
    index: VideoIndex,
    model: XCLIP,
    *,
    top_k: int | None = 10,
    template: str = "{}",
    method: str = "auto",
    batch_size: int = 256,
) -> list[SearchHit]:
    """Rank the videos of ``index`` for a text ``query`` (text-to-video retrieval).

    ``method``: ``"prompted"`` - the model's own score, cosine(video embedding, query embedding
    + the video-specific prompt), i.e. the X-CLIP logit divided by the logit scale (needs the
    index's tokens); ``"cosine"`` - cosine of the video embedding and the raw query embedding
    (no prompt generator; cheaper, works with a compact index); ``"auto"`` - prompted when the
    index has tokens. ``model`` must have the weights the index was built with.
    """
    if not query or not query.strip():
        raise ValueError("the search query is empty; give a text such as 'a person dancing'")
    if method not in ("auto", "prompted", "cosine"):
        raise ValueError(f"method must be auto, prompted or cosine, got {method!r}")
    index.check_model(model)
    if method == "auto":
        method = "prompted" if index.tokens is not None else "cosine"
    if method == "prompted" and index.tokens is None:
        raise ValueError(
            "this index was saved without tokens (embed --no-tokens), so only --method cosine "
            "works; rebuild it without --no-tokens for the prompted score"
        )
    if len(index) == 0:
        return []
    device = next(model.parameters()).device
    with torch.inference_mode():
        tokens = tokenize([_check_template(template).replace("{}", query.strip())]).to(device)
        text = model.encode_text(tokens).float()  # [1, C]
        if method == "cosine":
            scores = F.normalize(index.embeds.to(device), dim=-1) @ F.normalize(text, dim=-1)[0]
        else:
            parts = []
            for lo in range(0, len(index), batch_size):
                feats = VideoFeatures(
                    index.embeds[lo : lo + batch_size].to(device),
                    index.tokens[lo : lo + batch_size].to(device),
                )
                parts.append(model.logits(feats, text)[:, 0] / model.logit_scale.exp())
            scores = torch.cat(parts)  # [N]
    scores = scores.float().cpu()
    k = len(index) if top_k is None else min(top_k, len(index))
    order = scores.argsort(descending=True)[:k].tolist()
    return [SearchHit(r + 1, index.paths[i], float(scores[i])) for r, i in enumerate(order)]
