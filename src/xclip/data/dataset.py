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
  the number of workers; the loader advances the epoch itself. The default seed is 0 in every
  process, so that the shuffling of ``build_dataloader(..., distributed=True)`` (seeded from the
  dataset's seed) is the same permutation on every rank and each video is seen once per epoch.
* Unreadable videos are those whose decoding fails with the decoder's own error
  (:class:`~xclip.data.video.VideoDecodeError`) or the file system's (``OSError``: a missing file
  or tar member, a short read); :data:`READ_ERRORS`. Nothing else is: a ``TypeError`` in a
  transform, an out-of-memory ``RuntimeError`` or NaN values from a transform are bugs and
  propagate as such, never counted as bad data.
* Bad samples, training: an unreadable video is replaced by another sample drawn from the same
  seeded generator, logged once (path and reason) and counted (``dataset.num_bad``, shared by all
  workers); once more than ``max_bad_fraction`` of the dataset is bad, loading fails with
  :class:`TooManyBadVideos` (raised in the main process when loading through
  :func:`~xclip.data.loader.build_dataloader`, so the message stays one line). Evaluation never
  drops a video silently: used directly, ``dataset[i]`` raises :class:`VideoReadError`; through
  :func:`~xclip.data.loader.build_dataloader` it returns a :class:`BadSample` placeholder that
  the loader accounts for.
* Error messages name the fix in the settings of the ``xclip-video`` commands
  (``data.skip_bad=true``, ``data.max_bad_fraction=...``, ``xclip-video scan``).
"""

from __future__ import annotations

import logging
import numbers
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
from .video import VideoDecodeError, open_video

__all__ = [
    "READ_ERRORS",
    "BadSample",
    "TooManyBadVideos",
    "Transform",
    "VideoDataset",
    "VideoReadError",
]

log = logging.getLogger(__name__)

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

# The only errors that make a video "unreadable" (skipped or reported as bad data): the decoder's
# own and the file system's. Anything else escaping a load is a bug and propagates.
READ_ERRORS: tuple[type[BaseException], ...] = (VideoDecodeError, OSError)

SCAN_HINT = "xclip-video scan LIST -o scan.json --clean-list clean.txt"


class VideoReadError(InputError):
    """A video of the dataset could not be read (``path``, ``reason``, ``index``)."""

    def __init__(self, path: str, reason: str, index: int = -1):
        self.path, self.reason, self.index = path, reason, index
        super().__init__(
            f"cannot read video {path}: {reason}; remove it from the list ({SCAN_HINT} writes "
            "a list without the unreadable videos) or skip unreadable videos with "
            "data.skip_bad=true"
        )

    def __reduce__(self):
        return (type(self), (self.path, self.reason, self.index))


class TooManyBadVideos(InputError):
    """More than ``max_bad_fraction`` of a training set is unreadable (a problem of the data)."""


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
        seed: base seed of all sampling/augmentation and, through :func:`build_dataloader`, of
            the shuffling (default 0, None too: the same in every process, so that ranks agree
            on the order of an epoch).
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
        seed: int | None = 0,
        max_bad_fraction: float = 0.01,
        max_attempts: int = 100,
        check_files: bool = True,
    ) -> None:
        if mode not in ("train", "test"):
            raise InputError(f"mode must be 'train' or 'test', got {mode!r}")
        num_clips = _count("num_clips", num_clips)
        if num_crops not in (1, 3) or isinstance(num_crops, bool):
            raise InputError(f"num_crops must be 1 or 3, got {num_crops!r}")
        if num_frames is not None:
            num_frames = _count("num_frames", num_frames)
        if frame_interval is not None:
            frame_interval = _count("frame_interval", frame_interval)
        if view_mode not in ("random", "uniform"):
            raise InputError(f"view_mode must be 'random' or 'uniform', got {view_mode!r}")
        if sampling not in ("sparse", "dense"):
            raise InputError(f"sampling must be 'sparse' or 'dense', got {sampling!r}")
        if not (isinstance(max_bad_fraction, numbers.Real) and 0.0 <= max_bad_fraction <= 1.0):
            raise InputError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction!r}")
        max_attempts = _count("max_attempts", max_attempts)
        if decode_timeout is not None and not (
            isinstance(decode_timeout, numbers.Real) and decode_timeout > 0
        ):
            raise InputError(f"decode_timeout must be > 0 seconds or None, got {decode_timeout!r}")
        if seed is not None and not isinstance(seed, numbers.Integral | np.integer):
            raise InputError(f"seed must be an integer, got {seed!r}")
        if transform is not None and not callable(transform):
            raise InputError(
                f"transform must be a callable f(frames, generator), got {transform!r}"
            )
        annotations = _check_annotations(annotations)
        _check_labels(labels)
        # where the annotations came from (for reports that fingerprint the lists)
        self.list_file = os.fspath(annotations) if _is_path(annotations) else None
        self.labels_file = os.fspath(labels) if _is_path(labels) else None
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
        # A fixed default (not fresh entropy per process): build_dataloader seeds the shuffling
        # of every rank from it, and ranks with different permutations would see some videos
        # twice and others never in an epoch.
        self.seed = int(seed) if seed is not None else 0
        self.max_bad_fraction = float(max_bad_fraction)
        self.max_attempts = max_attempts
        # set by build_dataloader: return BadSample placeholders instead of raising in workers
        # (evaluation: one per unreadable video; training: once too many are unreadable), so
        # the loader can raise one clean error in the main process
        self.collect_errors = False
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
                raise VideoDecodeError(reader.path, "the video has no frames")
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
        # a transform's bugs are not the video's fault: these propagate, never "unreadable"
        if not isinstance(out, torch.Tensor) or out.ndim != 5:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise TypeError(f"transform returned {shape}, expected a tensor [V, T, 3, H, W]")
        if out.is_floating_point() and not bool(torch.isfinite(out).all()):
            raise FloatingPointError(
                f"the transform returned NaN/Inf values for {self.storage.describe(entry.path)} "
                "(its frames decoded fine); check the transform and the mean/std it normalises with"
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
            except READ_ERRORS as e:  # the decoder's and the file system's errors only
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
            except READ_ERRORS as e:  # the decoder's and the file system's errors only
                self._mark_bad(i, e)
                if self.too_many_bad():
                    return self._give_up(index, "too many unreadable videos")
        return self._give_up(index, f"no readable video in {self.max_attempts} draws")

    def _give_up(self, index: int, reason: str) -> BadSample:
        if self.collect_errors:  # in a loader worker: the main process raises (one clean line)
            return BadSample(index, self.storage.describe(self.entries[index].path), reason)
        raise self.too_many_bad_error()

    def too_many_bad(self) -> bool:
        """Whether more than ``max_bad_fraction`` of the videos are known to be unreadable."""
        return self.num_bad > self.max_bad_fraction * len(self)

    def too_many_bad_error(self) -> TooManyBadVideos:
        """The one-line error for a training set with too many unreadable videos."""
        n, total = self.num_bad, len(self)
        files = self.bad_files()
        shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
        where = self.list_file or "the list"
        return TooManyBadVideos(
            f"{n} of {total} training videos ({100.0 * n / max(total, 1):.2f}%) are unreadable, "
            f"more than data.max_bad_fraction={self.max_bad_fraction:g} allows: {shown} (reasons "
            f"in the warnings above); remove them from {where} ({SCAN_HINT} writes a list "
            "without them) or allow more with a larger data.max_bad_fraction"
        )

    def check_bad_fraction(self) -> None:
        """Raise :class:`TooManyBadVideos` if more than ``max_bad_fraction`` are unreadable."""
        if self.too_many_bad():
            raise self.too_many_bad_error()


def _count(name: str, value: Any) -> int:
    """A positive integer argument (``True`` or ``2.5`` are refused, ``np.int64(3)`` accepted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | np.integer):
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise InputError(f"{name} must be >= 1, got {value}")
    return int(value)


def _is_path(x: Any) -> bool:
    return isinstance(x, str | os.PathLike)


def _check_annotations(annotations: Any) -> Any:
    """A path, or in-memory entries: ``VideoEntry`` or ``(path, label)`` pairs. A string is a
    path (never iterated character by character); a string *item* is refused with the fix."""
    if _is_path(annotations):
        return annotations
    if isinstance(annotations, bytes | bytearray) or not isinstance(annotations, Sequence):
        if isinstance(annotations, bytes | bytearray) or not hasattr(annotations, "__iter__"):
            raise InputError(
                "annotations must be a list file, a video CSV, a class folder or a list of "
                f"(path, label) pairs, got {type(annotations).__name__}"
            )
        annotations = list(annotations)  # an iterator/generator: read it once
    for i, item in enumerate(annotations):
        if isinstance(item, VideoEntry):
            continue
        if _is_path(item) or isinstance(item, bytes):
            raise InputError(
                f"annotations[{i}] is the path {os.fspath(item)!r} without a label; give "
                "(path, label) pairs, VideoEntry items, or the path of a list file"
            )
        if not (isinstance(item, Sequence) and len(item) == 2 and _is_path(item[0])):
            raise InputError(
                f"annotations[{i}] must be a (path, label) pair or a VideoEntry, got {item!r}"
            )
        if isinstance(item[1], bool) or not isinstance(item[1], numbers.Integral | np.integer):
            raise InputError(
                f"annotations[{i}]: the label must be an integer class id, got {item[1]!r}"
            )
    return annotations


def _check_labels(labels: Any) -> None:
    """A labels CSV path (a string is a path), or a list of class names."""
    if labels is None or _is_path(labels):
        return
    if not isinstance(labels, Sequence) or isinstance(labels, bytes | bytearray):
        raise InputError(
            f"labels must be a labels CSV path or a list of class names, got {type(labels).__name__}"
        )
    bad = [n for n in labels if not isinstance(n, str)]
    if bad:
        raise InputError(f"labels: class names must be strings, got {bad[0]!r}")
