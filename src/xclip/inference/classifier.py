"""Zero-shot / open-set video classification with your own label texts, and timelines of long videos.

The class-text features of a label set are computed once and cached, so each further video costs
only the video side (decode, preprocess, vision tower + MIT + prompt generator). Probabilities
are the softmax over the labels, averaged over the views, as the original multi-view test.

Probabilities that are not finite (weights with NaNs, an fp16 overflow) raise
``FloatingPointError`` naming the video instead of coming back as NaN.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from xclip.errors import InputError

from ..model import XCLIP, VideoFeatures
from ..tokenizer import tokenize
from .errors import explain_decode_errors
from .labels import check_labels, check_templates, ensemble_text_features, prompts
from .pipeline import PreparedVideo, VideoInput, VideoPipeline, video_list
from .results import Prediction, VideoFailure
from .timeline import MAX_WINDOWS, check_window, frame_windows

logger = logging.getLogger(__name__)

__all__ = ["VideoClassifier"]


class VideoClassifier(VideoPipeline):
    """Zero-shot / open-set video classification with your own label texts.

    Args:
        model: an :class:`~xclip.XCLIP`, a checkpoint path, ``"arch.tag"`` released weights or an
            architecture name (random weights). The model is put in eval mode on ``device``.
        labels: the label texts (validated by :func:`check_labels`).
        template: prompt with ``{}`` where the label goes, e.g. ``"a video of a person {}"``, or
            a list of them: a label-text ensemble, each label's text features averaged over the
            templates in text space (:func:`~xclip.inference.labels.ensemble_text_features`).
        num_clips, num_crops: views per video (temporal clips x 1 or 3 crops); probabilities are
            averaged over views.
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available).
        precision: ``"auto"`` (bf16 on CUDA, fp32 on the CPU), ``"fp32"``, ``"bf16"`` or
            ``"fp16"`` (autocast; softmax in fp32).
        batch_size: views per model call (None: chosen for the device; 8 on the CPU).
        decode_threads: FFmpeg threads per video (1 = least overhead when decoding in parallel).
        compile: the compiled video encoder (``"auto"``: on CUDA; see
            :mod:`xclip.inference.accelerate`).

    ``__call__(video, labels=None)`` returns a :class:`Prediction`; other ``labels`` for one call
    (and ``template``) are allowed; their text features are cached too (up to 32 label sets).
    """

    def __init__(
        self,
        model: XCLIP | str | os.PathLike,
        labels: Sequence[str],
        template: str | Sequence[str] = "{}",
        *,
        num_clips: int = 1,
        num_crops: int = 1,
        device: str | torch.device | None = None,
        precision: str = "auto",
        batch_size: int | None = None,
        decode_threads: int = 1,
        compile: bool | str = "auto",
    ) -> None:
        super().__init__(
            model, num_clips=num_clips, num_crops=num_crops, device=device,
            precision=precision, batch_size=batch_size, decode_threads=decode_threads,
            compile=compile,
        )  # fmt: skip
        templates = check_templates(template)
        # one template stays a string (as results and JSON outputs show it); several, a list
        self.template: str | list[str] = templates[0] if isinstance(template, str) else templates
        self.labels = check_labels(labels)
        self._text_cache: OrderedDict[tuple[str, ...], torch.Tensor] = OrderedDict()
        self.text_features(self.labels)  # computed once, now

    def text_features(
        self, labels: Sequence[str] | None = None, template: str | Sequence[str] | None = None
    ) -> torch.Tensor:
        """Class-text features ``[K, C]`` of ``labels`` (default: the classifier's) with the
        template(s) (default: the classifier's) applied, several templates averaged in text
        space; cached per (templates, label set)."""
        labels = self.labels if labels is None else check_labels(labels)
        templates = check_templates(self.template if template is None else template)
        key = (tuple(templates), *labels)
        feats = self._text_cache.get(key)
        if feats is None:
            tokens = tokenize(prompts(labels, templates))
            with torch.inference_mode(), self.autocast():
                feats = self.model.encode_text(tokens.to(self.device))
                feats = ensemble_text_features(feats, len(templates))
            self._text_cache[key] = feats
            while len(self._text_cache) > 32:
                self._text_cache.popitem(last=False)
        else:
            self._text_cache.move_to_end(key)
        return feats

    def _probs(self, feats: VideoFeatures, text: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self.autocast():
            logits = self.model.logits(feats, text)  # [V, K]
        return logits.float().softmax(dim=-1)

    def _ranked(
        self, probs: torch.Tensor, labels: list[str], prepared: PreparedVideo
    ) -> Prediction:
        p = probs.mean(dim=0).cpu()  # [K], the original averages softmax over views
        if not bool(torch.isfinite(p).all()):
            raise FloatingPointError(
                f"{prepared.source}: the model gave NaN or infinite scores (its weights hold "
                f"NaN/inf, or {self.precision} overflowed: try precision='fp32')"
            )
        order = p.argsort(descending=True).tolist()
        return Prediction(
            labels=tuple(labels[k] for k in order),
            probs=tuple(float(p[k]) for k in order),
            source=prepared.source,
            frame_indices=tuple(tuple(int(i) for i in row) for row in prepared.frame_indices),
            timings=dict(prepared.timings),
            start=prepared.start,
            end=prepared.end,
        )

    def predict(
        self,
        prepared: PreparedVideo,
        labels: Sequence[str] | None = None,
        template: str | Sequence[str] | None = None,
    ) -> Prediction:
        """Classify a :class:`PreparedVideo` (from :meth:`prepare`), optionally with other
        ``labels``/``template`` than the classifier's (their text features are cached too)."""
        t0 = time.perf_counter()
        feats = self.encode(prepared.clips)
        prepared.timings["model"] = time.perf_counter() - t0
        return self.rank(prepared, feats, labels, template)

    def rank(
        self,
        prepared: PreparedVideo,
        feats: VideoFeatures,
        labels: Sequence[str] | None = None,
        template: str | Sequence[str] | None = None,
    ) -> Prediction:
        """The :class:`Prediction` of a prepared video from its features (:meth:`encode`,
        :meth:`encode_iter`): softmax over the labels per view, averaged over the views."""
        labels = self.labels if labels is None else check_labels(labels)
        return self._ranked(
            self._probs(feats, self.text_features(labels, template)), labels, prepared
        )

    def predict_batch(
        self,
        prepared: Sequence[PreparedVideo],
        labels: Sequence[Sequence[str] | None] | None = None,
        templates: Sequence[str | Sequence[str] | None] | None = None,
    ) -> list[Prediction]:
        """Classify several :class:`PreparedVideo` with one pass of the video encoder (their
        views concatenated, ``batch_size`` per forward), each with its own labels and template
        (``None``: the classifier's): what a server batching concurrent requests calls. The
        labels of every item are checked before the model runs."""
        n = len(prepared)
        labels = [None] * n if labels is None else list(labels)
        templates = [None] * n if templates is None else list(templates)
        if len(labels) != n or len(templates) != n:
            raise ValueError(
                f"predict_batch: {n} videos, {len(labels)} label sets, {len(templates)} templates"
            )
        if not n:
            return []
        checked = [self.labels if lb is None else check_labels(lb) for lb in labels]
        for lb, tp in zip(checked, templates, strict=True):
            self.text_features(lb, tp)  # every label set checked and cached before the model
        t0 = time.perf_counter()
        feats = self.encode_many([p.clips for p in prepared])
        dt = (time.perf_counter() - t0) / n
        out = []
        for p, f, lb, tp in zip(prepared, feats, checked, templates, strict=True):
            p.timings["model"] = dt
            out.append(self.rank(p, f, lb, tp))
        return out

    def __call__(
        self,
        video: VideoInput,
        labels: Sequence[str] | None = None,
        template: str | Sequence[str] | None = None,
    ) -> Prediction:
        """Classify one video: a path, bytes of a file, uint8 frames ``[N, H, W, 3]`` or a
        preprocessed float clip ``[T, 3, S, S]``/``[V, T, 3, S, S]``."""
        if isinstance(video, list | tuple):
            raise TypeError(
                "a VideoClassifier call takes one video; classify a list with classify_many() "
                "or classify_iter()"
            )
        return self.predict(self.prepare(video), labels, template)

    def classify_iter(
        self, videos: Sequence[VideoInput], *, workers: int = 1
    ) -> Iterator[Prediction | VideoFailure]:
        """Classify many videos, yielding a :class:`Prediction` or :class:`VideoFailure` per
        video, in order. Decoding runs ``workers`` threads ahead of the model; the views of
        several videos share one model call (up to ``batch_size`` views). A path string is one
        video or a folder (see :func:`~xclip.inference.pipeline.video_list`)."""
        videos = video_list(videos)
        self.text_features()  # computed (and checked) before any video
        prepared = (item for _, item in self.prepare_iter(videos, workers=workers))
        for item in self.encode_iter(prepared):
            if isinstance(item, VideoFailure):
                logger.debug("skipping %s: %s", item.source, item.error)
                yield item
                continue
            yield self.rank(*item)

    def classify_many(
        self,
        videos: Sequence[VideoInput] | str | os.PathLike,
        *,
        workers: int = 1,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> tuple[list[Prediction], list[VideoFailure]]:
        """Classify a list of videos (or a folder): ``(predictions, failures)``. Unreadable
        videos are logged, skipped and listed in ``failures``; ``progress(done, total, source)``
        is called after each video. Only videos the decoder or the file system cannot read are
        failures; any other error propagates."""
        videos = video_list(videos)
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
        max_windows: int | None = MAX_WINDOWS,
    ) -> list[Prediction]:
        """Predictions per time window of a long video (``window``/``stride`` in seconds; the
        default stride is the window). Windows start every ``stride`` seconds; the last one ends
        at the end of the video (it may be shorter); a video shorter than one window gives one
        window over the whole video. Each window is classified like a whole video (T frames at
        its segment centres). uint8 frames ``[N, H, W, 3]`` need ``fps``.
        Times use the average frame rate of the file (``num_frames / duration``).
        A window or stride shorter than one frame, or more than ``max_windows`` windows (``None``:
        no limit), raise :class:`~xclip.inference.timeline.TimelineError` before any window
        runs."""
        if isinstance(video, list | tuple):
            raise TypeError("timeline() takes one video; call it once per video")
        stride = window if stride is None else stride
        check_window(window, stride)
        labels = self.labels if labels is None else check_labels(labels)
        self.text_features(labels)  # computed (and checked) before any window
        if isinstance(video, np.ndarray | torch.Tensor):
            if fps is None or fps <= 0:
                raise InputError("timeline() of raw frames needs their frame rate: fps=...")
            if video.dtype not in (np.uint8, torch.uint8) or video.ndim != 4 or not len(video):
                raise InputError(
                    f"timeline() takes uint8 frames [N, H, W, 3], got {video.dtype} "
                    f"{tuple(video.shape)}"
                )
            source, reader_cm = "<frames>", contextlib.nullcontext(None)
            total = int(video.shape[0])
        else:
            source = os.fspath(video) if isinstance(video, str | os.PathLike) else "<bytes>"
            reader_cm = explain_decode_errors()
        results: list[Prediction] = []
        with reader_cm:
            reader = None if source == "<frames>" else self.open_reader(video, None)
            try:
                if reader is not None:
                    fps, total = reader.metadata.fps, reader.num_frames
                assert fps is not None
                windows = frame_windows(
                    total, fps, window, stride, max_windows=max_windows, source=source
                )
                # windows are prepared a model call's worth at a time (one decoder pass each)
                per_call = max(1, self.batch_size // self.processor.num_views)
                frames = video if reader is None else reader
                for c in range(0, len(windows), per_call):
                    chunk = self.processor.windows(frames, windows[c : c + per_call], fps, source)
                    for prep, feats in self.encode_iter(chunk):  # type: ignore[misc]
                        results.append(self.rank(prep, feats, labels))
            finally:
                if reader is not None:
                    reader.close()
        return results
