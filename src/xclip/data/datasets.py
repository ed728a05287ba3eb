"""``VideoDataset`` and ``build_dataloader``: annotated videos -> ``[V, T, 3, H, W]`` clips.

::

    from xclip.data.datasets import VideoDataset, build_dataloader

    train = VideoDataset("train.txt", root="videos/", labels="labels.csv", preprocess=pre, mode="train", seed=0)
    loader = build_dataloader(train, batch_size=8, workers=8, train=True)
    for epoch in range(epochs):
        for clips, labels, index in loader:   # clips: float [B, 1, T, 3, H, W]
            ...

* Annotations: the original list format, a video CSV, a class-folder tree, or entries in memory
  (see :mod:`xclip.data.annotations`). Every problem - malformed lines, labels out of range,
  missing videos - is reported in one :class:`AnnotationError` when the dataset is built.
* Storage: a folder (``root``), or an **uncompressed tar** (``root="videos.tar"``) whose members
  are found by their relative path or, as the original's flat tars, by basename. The tar is
  indexed once when the dataset is built and opened lazily in each worker process.
* Randomness: every sample's temporal sampling and augmentation come from
  ``numpy.random.default_rng([seed, epoch, index, attempt])``, so a run is reproducible whatever
  the number of workers; the loader advances the epoch itself.
* Robustness, training: an unreadable video is replaced by another sample drawn from the same
  seeded generator, logged once (path and reason) and counted (``dataset.num_bad``, shared by all
  workers); once more than ``max_bad_fraction`` of the dataset is bad, loading fails with
  :class:`TooManyBadVideos`. Evaluation never drops a video silently: through
  :func:`build_dataloader` it fails at the end of the pass listing every unreadable file
  (:class:`BadVideosError`), or with ``skip_bad=True`` skips them and reports how many
  (``loader.skipped``). Used directly, ``dataset[i]`` raises :class:`VideoReadError`.
"""

from __future__ import annotations

import logging
import os
import random
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import PreprocessConfig
from .annotations import Annotations, VideoEntry, load_annotations
from .sampling import SamplingStrategy, ViewMode, sample_frame_indices
from .transforms import EvalTransform, TrainTransform

__all__ = [
    "BadSample",
    "BadVideosError",
    "EvalDistributedSampler",
    "FolderStorage",
    "TarStorage",
    "TooManyBadVideos",
    "VideoDataLoader",
    "VideoDataset",
    "VideoReadError",
    "build_dataloader",
    "collate_videos",
    "open_storage",
    "seed_worker",
]

log = logging.getLogger(__name__)

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


# --- errors -------------------------------------------------------------------------------------


class VideoReadError(RuntimeError):
    """A video of the dataset could not be read (``path``, ``reason``, ``index``)."""

    def __init__(self, path: str, reason: str, index: int = -1):
        self.path, self.reason, self.index = path, reason, index
        super().__init__(f"cannot read video {path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason, self.index))


class TooManyBadVideos(RuntimeError):
    """More than ``max_bad_fraction`` of a training set is unreadable."""


class BadVideosError(RuntimeError):
    """An evaluation pass met unreadable videos (``bad``: list of :class:`BadSample`)."""

    def __init__(self, bad: Sequence[BadSample], total: int):
        self.bad = list(bad)
        lines = "\n".join(f"  {b.path}: {b.reason}" for b in self.bad[:100])
        more = f"\n  ... and {len(self.bad) - 100} more" if len(self.bad) > 100 else ""
        super().__init__(
            f"{len(self.bad)} of {total} evaluation videos could not be read (nothing was "
            f"dropped silently; fix them, or pass skip_bad=True to skip and report them):\n"
            f"{lines}{more}"
        )


@dataclass(frozen=True)
class BadSample:
    """Placeholder returned (in evaluation, through :func:`build_dataloader`) for a bad video."""

    index: int
    path: str
    reason: str


# --- storage ------------------------------------------------------------------------------------


class FolderStorage:
    """Videos under a folder; ``source(path)`` is the file path handed to the decoder."""

    def __init__(self, root: str | os.PathLike | None):
        self.root = None if root is None else os.fspath(root)
        if self.root is not None and not os.path.isdir(self.root):
            raise FileNotFoundError(f"video folder not found: {self.root}")

    def resolve(self, path: str) -> str:
        return path if self.root is None else os.path.join(self.root, path)

    def exists(self, path: str) -> bool:
        return os.path.isfile(self.resolve(path))

    def source(self, path: str) -> str:
        return self.resolve(path)

    def describe(self, path: str) -> str:
        return self.resolve(path)

    def __repr__(self) -> str:
        return f"FolderStorage({self.root!r})"


class TarStorage:
    """Members of an uncompressed tar, by relative path or (if unique) by basename.

    The member table (name -> data offset, size) is built once in the constructing process; the
    file itself is opened lazily in each process (DataLoader worker) and read with ``pread``."""

    def __init__(self, tar_path: str | os.PathLike):
        self.tar_path = os.fspath(tar_path)
        if not os.path.isfile(self.tar_path):
            raise FileNotFoundError(f"tar archive not found: {self.tar_path}")
        try:
            with tarfile.open(self.tar_path, mode="r:") as tf:
                members = [m for m in tf.getmembers() if m.isfile()]
        except tarfile.ReadError as e:
            raise ValueError(
                f"{self.tar_path} is not an uncompressed tar archive ({e}); random access needs "
                "an uncompressed tar (create it with 'tar -cf', not -czf)"
            ) from e
        self.members: dict[str, tuple[int, int]] = {}
        by_base: dict[str, list[str]] = {}
        for m in members:
            name = m.name[2:] if m.name.startswith("./") else m.name
            self.members[name] = (m.offset_data, m.size)
            by_base.setdefault(os.path.basename(name), []).append(name)
        self.by_basename = {b: names[0] for b, names in by_base.items() if len(names) == 1}
        self._fd: int | None = None
        self._pid: int | None = None

    def _lookup(self, path: str) -> str | None:
        p = path[2:] if path.startswith("./") else path
        if p in self.members:
            return p
        return self.by_basename.get(os.path.basename(p))

    def exists(self, path: str) -> bool:
        return self._lookup(path) is not None

    def source(self, path: str) -> bytes:
        name = self._lookup(path)
        if name is None:
            raise FileNotFoundError(f"{path} is not in {self.tar_path}")
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.tar_path, os.O_RDONLY)
            self._pid = os.getpid()
        offset, size = self.members[name]
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise OSError(f"short read of {name} in {self.tar_path} (archive truncated?)")
        return data

    def describe(self, path: str) -> str:
        return f"{self.tar_path}:{self._lookup(path) or path}"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fd"] = state["_pid"] = None  # each process opens its own descriptor
        return state

    def __repr__(self) -> str:
        return f"TarStorage({self.tar_path!r}, {len(self.members)} members)"


def open_storage(root: str | os.PathLike | None) -> FolderStorage | TarStorage:
    """``*.tar`` -> :class:`TarStorage`, a folder (or None: paths as given) -> :class:`FolderStorage`."""
    if root is not None and os.fspath(root).endswith(".tar"):
        return TarStorage(root)
    return FolderStorage(root)


# --- dataset ------------------------------------------------------------------------------------


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
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if num_clips < 1 or num_crops not in (1, 3):
            raise ValueError(
                f"num_clips must be >= 1 and num_crops 1 or 3, got {num_clips}, {num_crops}"
            )
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
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
        from .video import open_video

        entry = self.entries[index]
        source = self.storage.source(entry.path)
        with open_video(
            source, self.backend, name=self.storage.describe(entry.path), **self.decoder_options
        ) as reader:
            total = reader.num_frames
            if total < 1:
                raise ValueError("the video has no frames")
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


# --- loading ------------------------------------------------------------------------------------


class EvalDistributedSampler(Sampler[int]):
    """Rank ``r`` of ``w`` gets indices ``r, r+w, r+2w, ...``: every sample exactly once over all
    ranks, with no padding duplicates (ranks may differ by one sample)."""

    def __init__(self, dataset_len: int, num_replicas: int | None = None, rank: int | None = None):
        if num_replicas is None or rank is None:
            import torch.distributed as dist

            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError(
                    "distributed=True needs torch.distributed initialised, or rank and world_size"
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} out of range for {num_replicas} replicas")
        self.n, self.num_replicas, self.rank = dataset_len, num_replicas, rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.num_replicas))

    def set_epoch(self, epoch: int) -> None:  # same order every epoch
        pass


def collate_videos(batch: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[BadSample]]:
    """Stack good samples; pass :class:`BadSample` placeholders on separately."""
    good = [b for b in batch if not isinstance(b, BadSample)]
    bad = [b for b in batch if isinstance(b, BadSample)]
    if good:
        clips = torch.stack([g[0] for g in good])
        labels = torch.tensor([g[1] for g in good], dtype=torch.long)
        idx = torch.tensor([g[2] for g in good], dtype=torch.long)
    else:
        clips = torch.empty(0)
        labels = idx = torch.empty(0, dtype=torch.long)
    return clips, labels, idx, bad


def seed_worker(worker_id: int) -> None:
    """Worker init: seed ``random`` and numpy's global RNG from the worker's torch seed (torch
    already gives every worker a distinct one) and use one intra-op thread per worker."""
    s = torch.initial_seed() % 2**32
    random.seed(s)
    np.random.seed(s)
    torch.set_num_threads(1)


class VideoDataLoader(DataLoader):
    """A DataLoader that advances the dataset's (and sampler's) epoch on every pass and, in
    evaluation, accounts for every video: batches are ``(clips, labels, indices)``; unreadable
    videos end the pass with :class:`BadVideosError` or, with ``skip_bad``, are listed in
    ``skipped`` and reported in the log."""

    def __init__(self, *args, evaluation: bool = False, skip_bad: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._pass = 0
        self.evaluation = evaluation
        self.skip_bad = skip_bad
        self.skipped: list[BadSample] = []

    def set_epoch(self, epoch: int) -> None:
        self._pass = int(epoch)

    def __iter__(self):
        epoch = self._pass
        self._pass += 1
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        return self._generate(super().__iter__())

    def _generate(self, it):
        bad: list[BadSample] = []
        seen = 0
        for clips, labels, idx, bad_in_batch in it:
            bad += bad_in_batch
            seen += len(idx) + len(bad_in_batch)
            if len(idx):
                yield clips, labels, idx
        if not self.evaluation:
            return
        bad.sort(key=lambda b: b.index)
        self.skipped = bad
        if bad and not self.skip_bad:
            raise BadVideosError(bad, seen)
        if bad:
            log.warning(
                "evaluation skipped %d of %d videos that could not be read: %s",
                len(bad), seen, ", ".join(b.path for b in bad[:20]),
            )  # fmt: skip


def build_dataloader(
    dataset: VideoDataset,
    batch_size: int,
    workers: int = 4,
    train: bool = True,
    distributed: bool = False,
    *,
    rank: int | None = None,
    world_size: int | None = None,
    skip_bad: bool = False,
    pin_memory: bool | None = None,
    persistent_workers: bool = True,
    prefetch_factor: int | None = None,
    drop_last: bool | None = None,
    seed: int | None = None,
    timeout: float = 0,
    multiprocessing_context: Any = None,
) -> VideoDataLoader:
    """A ready DataLoader for a :class:`VideoDataset`.

    * train: shuffled (``DistributedSampler(shuffle=True)`` with ``distributed``), ``drop_last``
      by default (as the original), new random draws every epoch (just iterate again).
    * eval: in order, no ``drop_last``, every sample exactly once - with ``distributed`` each rank
      gets ``rank::world_size`` (:class:`EvalDistributedSampler`, no padding duplicates); bad
      videos: see :class:`VideoDataLoader` (``skip_bad``).
    * ``pin_memory`` defaults to CUDA availability; workers persist across epochs, are seeded
      (:func:`seed_worker`) and use one thread each.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    seed = dataset.seed if seed is None and hasattr(dataset, "seed") else (seed or 0)
    if hasattr(dataset, "collect_errors"):
        dataset.collect_errors = not train
    sampler: Sampler | None = None
    shuffle = False
    if train:
        if distributed:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(
                dataset,
                num_replicas=world_size,
                rank=rank,
                shuffle=True,
                seed=seed % 2**31,
                drop_last=False,
            )
        else:
            shuffle = True
    elif distributed:
        sampler = EvalDistributedSampler(len(dataset), world_size, rank)
    gen = torch.Generator().manual_seed(seed % 2**63)
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs["persistent_workers"] = persistent_workers
        kwargs["worker_init_fn"] = seed_worker
        kwargs["timeout"] = timeout
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
        if multiprocessing_context is not None:
            kwargs["multiprocessing_context"] = multiprocessing_context
    return VideoDataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_videos,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=train if drop_last is None else drop_last,
        generator=gen,
        evaluation=not train,
        skip_bad=skip_bad,
        **kwargs,
    )
