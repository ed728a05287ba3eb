"""``VideoDataset``: annotated videos -> ``(clip float [V, T, 3, H, W], label, index)``.

::

    from xclip.data import VideoDataset, build_dataloader

    train = VideoDataset("train.txt", root="videos/", labels="labels.csv", preprocess=pre, mode="train", seed=0)
    loader = build_dataloader(train, batch_size=8, workers=8, train=True)
    for epoch in range(epochs):
        for clips, labels, index in loader:   # clips: float [B, 1, T, 3, H, W]
            ...

* Annotations: the original list format, a video CSV, a class-folder tree, or entries in memory
  (see :mod:`xclip.data.annotations`). Every problem - malformed lines, labels out of range,
  missing videos - is reported in one :class:`AnnotationError` when the dataset is built.
* Storage: a folder or an uncompressed tar (:mod:`xclip.data.storage`).
* Randomness: every sample's temporal sampling and augmentation come from
  ``numpy.random.default_rng([seed, epoch, index, attempt])``, so a run is reproducible whatever
  the number of workers; the loader advances the epoch itself.
* Bad samples, training: an unreadable video is replaced by another sample drawn from the same
  seeded generator, logged once (path and reason) and counted (``dataset.num_bad``, shared by all
  workers); once more than ``max_bad_fraction`` of the dataset is bad, loading fails with
  :class:`TooManyBadVideos`. Evaluation never drops a video silently: used directly,
  ``dataset[i]`` raises :class:`VideoReadError`; through :func:`~xclip.data.loader.build_dataloader`
  it returns a :class:`BadSample` placeholder that the loader accounts for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from xclip.errors import InputError

from ..config import PreprocessConfig
from .annotations import Annotations, VideoEntry, load_annotations
from .sampling import SamplingStrategy, ViewMode, sample_frame_indices
from .storage import open_storage
from .transforms import EvalTransform, TrainTransform
from .video import open_video

__all__ = [
    "BadSample",
    "TooManyBadVideos",
    "Transform",
    "VideoDataset",
    "VideoReadError",
]

log = logging.getLogger(__name__)

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class VideoReadError(RuntimeError):
    """A video of the dataset could not be read (``path``, ``reason``, ``index``)."""

    def __init__(self, path: str, reason: str, index: int = -1):
        self.path, self.reason, self.index = path, reason, index
        super().__init__(f"cannot read video {path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason, self.index))


class TooManyBadVideos(RuntimeError):
    """More than ``max_bad_fraction`` of a training set is unreadable."""


@dataclass(frozen=True)
class BadSample:
    """Placeholder returned (in evaluation, through :func:`build_dataloader`) for a bad video."""

    index: int
    path: str
    reason: str


class VideoDataset(Dataset):
    """Annotated videos -> ``(clip float [V, T, 3, H, W], label int, index int)``.

    Args:
        annotations: list file, video CSV, class folder, or ``VideoEntry``/``(path, label)`` items.
        root: video folder or uncompressed ``.tar`` (None: paths are used as given).
        labels: labels CSV or class names (needed for name labels in a CSV; checks label range).
        num_frames: T (default ``preprocess.num_frames``, else 8).
        mode: ``"train"`` (random sampling + train augmentation, V = ``num_clips``, default 1) or
            ``"test"`` (segment centres / multi-view, eval crops; V = ``num_clips * num_crops``,
            crop-major as the original).
        num_clips, num_crops: temporal and spatial views in test mode (original: 1x1 or 4x3).
        view_mode: multi-view temporal sampling, ``"random"`` (the original: independent random
            samplings) or ``"uniform"`` (deterministic, evenly spaced).
        sampling: ``"sparse"`` (the original TSN sampling) or ``"dense"`` (``frame_interval``).
        preprocess: the weights' :class:`~xclip.PreprocessConfig` (size, mean/std, resize_short).
        transform: replaces the default transform: ``f(uint8 [Vt, T, 3, H, W], torch.Generator)
            -> float [V, T, 3, H, W]``.
        backend, decoder_options: passed to :func:`xclip.data.video.open_video`.
        seed: base seed of all sampling/augmentation (None: a random one, drawn once).
        max_bad_fraction: training fails once more than this fraction of videos is unreadable.
        check_files: verify at construction that every video exists (missing ones are reported
            in the :class:`AnnotationError` with their line numbers).
    """

    def __init__(
        self,
        annotations: str | os.PathLike | Sequence[VideoEntry | tuple[str, int]],
        root: str | os.PathLike | None = None,
        labels: str | os.PathLike | Sequence[str] | None = None,
        *,
        num_frames: int | None = None,
        mode: Literal["train", "test"] = "train",
        num_clips: int = 1,
        num_crops: int = 1,
        view_mode: ViewMode = "random",
        sampling: SamplingStrategy = "sparse",
        frame_interval: int | None = None,
        preprocess: PreprocessConfig | None = None,
        transform: Transform | None = None,
        backend: str = "auto",
        decoder_options: dict[str, Any] | None = None,
        decode_timeout: float | None = 120.0,
        seed: int | None = None,
        max_bad_fraction: float = 0.01,
        max_attempts: int = 100,
        check_files: bool = True,
    ) -> None:
        if mode not in ("train", "test"):
            raise InputError(f"mode must be 'train' or 'test', got {mode!r}")
        if num_clips < 1 or num_crops not in (1, 3):
            raise InputError(
                f"num_clips must be >= 1 and num_crops 1 or 3, got {num_clips}, {num_crops}"
            )
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise InputError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        self.storage = open_storage(root)
        ann: Annotations = load_annotations(
            annotations, labels, exists=self.storage.exists if check_files else None
        )
        self.entries: list[VideoEntry] = ann.entries
        self.class_names = ann.class_names
        self.preprocess = preprocess or PreprocessConfig()
        self.num_frames = int(num_frames or (preprocess.num_frames if preprocess else 8))
        self.mode = mode
        self.train = mode == "train"
        self.num_clips, self.num_crops = num_clips, num_crops
        self.view_mode, self.sampling, self.frame_interval = view_mode, sampling, frame_interval
        if transform is None:
            if self.train:
                transform = TrainTransform.from_preprocess(self.preprocess)
            else:
                transform = EvalTransform.from_preprocess(self.preprocess, num_crops)
        self.transform = transform
        self.backend = backend
        self.decoder_options = dict(decoder_options or {})
        if decode_timeout is not None:
            self.decoder_options.setdefault("timeout", decode_timeout)
        self.decoder_options.setdefault("num_threads", 1)
        self.seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        self.max_bad_fraction = max_bad_fraction
        self.max_attempts = max_attempts
        self.collect_errors = False  # set by build_dataloader for evaluation
        # shared across DataLoader worker processes (shared memory)
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._bad = torch.zeros(len(self.entries), dtype=torch.uint8).share_memory_()
        self._reasons: dict[int, str] = {}  # this process only

    # -- bookkeeping ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    @property
    def num_views(self) -> int:
        return self.num_clips * (1 if self.train else self.num_crops)

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names is not None else None

    def set_epoch(self, epoch: int) -> None:
        """New random draws for every sample (the loader of :func:`build_dataloader` calls it)."""
        self._epoch[0] = int(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    @property
    def num_bad(self) -> int:
        """Distinct unreadable videos met so far, by any worker."""
        return int(self._bad.sum())

    def bad_files(self) -> list[str]:
        return [self.entries[i].path for i in torch.nonzero(self._bad).view(-1).tolist()]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_reasons"] = {}
        return state

    def __repr__(self) -> str:
        return (
            f"VideoDataset({len(self)} videos, mode={self.mode}, T={self.num_frames}, "
            f"views={self.num_views}, storage={self.storage!r})"
        )

    # -- loading --------------------------------------------------------------------------------
    def _rng(self, index: int, attempt: int, stream: int = 0) -> np.random.Generator:
        epoch = self.epoch if self.train else 0
        return np.random.default_rng([self.seed, epoch, index, attempt, stream])

    def load(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        """Decode and transform video ``index``; raises on any problem."""
        entry = self.entries[index]
        source = self.storage.source(entry.path)
        with open_video(
            source, self.backend, name=self.storage.describe(entry.path), **self.decoder_options
        ) as reader:
            total = reader.num_frames
            if total < 1:
                raise InputError("the video has no frames")
            inds = sample_frame_indices(
                total,
                self.num_frames,
                train=self.train,
                num_views=self.num_clips,
                view_mode=self.view_mode,
                strategy=self.sampling,
                frame_interval=self.frame_interval,
                rng=rng,
            )
            frames = reader.get_frames(inds.reshape(-1))
        clip = torch.from_numpy(frames).view(*inds.shape, *frames.shape[1:]).permute(0, 1, 4, 2, 3)
        gen = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
        out = self.transform(clip, gen)
        if out.ndim != 5:
            raise RuntimeError(
                f"transform returned shape {tuple(out.shape)}, expected [V, T, 3, H, W]"
            )
        return out

    def _mark_bad(self, index: int, exc: BaseException) -> None:
        path = self.storage.describe(self.entries[index].path)
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        first = int(self._bad[index]) == 0
        self._bad[index] = 1
        self._reasons[index] = reason
        if first:
            log.warning("unreadable video %s: %s", path, reason)

    def __getitem__(self, index: int):
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} videos")
        if not self.train:
            try:
                return self.load(index, self._rng(index, 0)), self.entries[index].label, index
            except Exception as e:  # noqa: BLE001 - any failure of this video is reported
                self._mark_bad(index, e)
                path = self.storage.describe(self.entries[index].path)
                reason = self._reasons[index]
                if self.collect_errors:
                    return BadSample(index, path, reason)
                raise VideoReadError(path, reason, index) from e
        for attempt in range(self.max_attempts):
            # candidate: the requested video, then replacements drawn from seeded generators
            # (independent of which videos are already known to be bad, so runs are reproducible)
            i = index if attempt == 0 else int(self._rng(index, attempt, 1).integers(len(self)))
            if self._bad[i]:
                continue
            try:
                return self.load(i, self._rng(index, attempt)), self.entries[i].label, i
            except Exception as e:  # noqa: BLE001 - any failure makes the video "bad"
                self._mark_bad(i, e)
                self._check_bad_fraction()
        raise TooManyBadVideos(
            f"no readable video found in {self.max_attempts} draws for sample {index}; "
            f"{self.num_bad} of {len(self)} videos are unreadable so far: {self.bad_files()[:10]}"
        )

    def _check_bad_fraction(self) -> None:
        n = self.num_bad
        if n > self.max_bad_fraction * len(self):
            files = ", ".join(self.bad_files()[:20])
            raise TooManyBadVideos(
                f"{n} of {len(self)} training videos ({100.0 * n / len(self):.2f}%) are unreadable, "
                f"more than max_bad_fraction={self.max_bad_fraction}; first ones: {files}. Fix or "
                "remove them from the list (their reasons are in the warnings above), or raise "
                "max_bad_fraction."
            )
