"""Loading batches of a :class:`~xclip.data.dataset.VideoDataset`: samplers, collation, worker
seeding and :func:`build_dataloader`, the one way the project builds its loaders.

Evaluation accounts for every video: an unreadable one ends the pass with
:class:`BadVideosError` listing every unreadable file, or with ``skip_bad=True`` is skipped and
reported (``loader.skipped``). Training replaces unreadable videos (see
:class:`~xclip.data.dataset.VideoDataset`) until too many are bad; the loader then raises
:class:`~xclip.data.dataset.TooManyBadVideos` in the main process. Both errors are
:class:`~xclip.errors.InputError` (the user's data), one line each, naming the fix.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler
from torch.utils.data.distributed import DistributedSampler

from xclip.errors import InputError

from .dataset import SCAN_HINT, BadSample, VideoDataset

__all__ = [
    "BadVideosError",
    "EvalDistributedSampler",
    "VideoDataLoader",
    "build_dataloader",
    "collate_videos",
    "seed_worker",
]

log = logging.getLogger(__name__)


class BadVideosError(InputError):
    """Videos of an evaluation (or validation) list are unreadable (``bad``: list of
    :class:`BadSample`, ``total``: videos in the pass); one line naming them and the fix."""

    def __init__(self, bad: Sequence[BadSample], total: int, what: str = "evaluation"):
        self.bad, self.total, self.what = list(bad), int(total), what
        shown = "; ".join(f"{b.path} ({b.reason})" for b in self.bad[:10])
        more = f"; and {len(self.bad) - 10} more" if len(self.bad) > 10 else ""
        super().__init__(
            f"{len(self.bad)} of {total} {what} videos could not be read (nothing was dropped "
            f"silently): {shown}{more}; remove them from the list ({SCAN_HINT} writes a list "
            "without them) or skip and report them with data.skip_bad=true"
        )

    def __reduce__(self):
        return (type(self), (self.bad, self.total, self.what))


class EvalDistributedSampler(Sampler[int]):
    """Rank ``r`` of ``w`` gets indices ``r, r+w, r+2w, ...``: every sample exactly once over all
    ranks, with no padding duplicates (ranks may differ by one sample)."""

    def __init__(self, dataset_len: int, num_replicas: int | None = None, rank: int | None = None):
        if num_replicas is None or rank is None:
            if not (dist.is_available() and dist.is_initialized()):
                raise InputError(
                    "distributed=True needs torch.distributed initialised, or rank and world_size"
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise InputError(f"rank {rank} out of range for {num_replicas} replicas")
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
    ``skipped`` and reported in the log. In training, a placeholder from a dataset that gave up
    (too many unreadable videos) ends the pass with its one-line
    :class:`~xclip.data.dataset.TooManyBadVideos`, raised here in the main process."""

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
            if bad_in_batch and not self.evaluation:
                raise _too_many_bad(self.dataset, bad_in_batch)
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


def _too_many_bad(dataset, bad: list[BadSample]) -> Exception:
    """The training set's own one-line error (its bad-video count is shared with the workers)."""
    if hasattr(dataset, "too_many_bad_error"):
        return dataset.too_many_bad_error()
    return BadVideosError(bad, len(dataset), "training")


def build_dataloader(
    dataset: VideoDataset,
    batch_size: int,
    workers: int = 4,
    train: bool = True,
    distributed: bool = False,
    *,
    rank: int | None = None,
    world_size: int | None = None,
    sampler: Sampler[int] | None = None,
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
    * ``sampler``: an order of your own instead of these (e.g. the trainer's resumable sampler);
      it does its own sharding (no ``distributed``). The loader's seeded generator only drives
      the default orders, so with ``sampler`` the workers' base seed is drawn from torch's global
      RNG, as a plain DataLoader does (a checkpoint that saves that RNG resumes exactly).
    * ``pin_memory`` defaults to CUDA availability; workers persist across epochs, are seeded
      (:func:`seed_worker`) and use one thread each.
    """
    if isinstance(dataset, str | bytes) or not (
        hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")
    ):
        raise InputError(
            f"build_dataloader needs a dataset (e.g. VideoDataset(list_file, root, labels)), "
            f"got {type(dataset).__name__} {dataset!r:.80}"
        )
    for name, value, low in (("batch_size", batch_size, 1), ("workers", workers, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    if sampler is not None and distributed:
        raise InputError("pass distributed=False with a sampler of your own: it shards itself")
    seed = dataset.seed if seed is None and hasattr(dataset, "seed") else (seed or 0)
    if hasattr(dataset, "collect_errors"):
        # placeholders instead of exceptions raised inside worker processes (whose re-raised
        # copies carry the worker's traceback as their message); the loader raises one line
        dataset.collect_errors = True
    shuffle = False
    gen: torch.Generator | None = None
    if sampler is None:
        if train and distributed:
            sampler = DistributedSampler(
                dataset,
                num_replicas=world_size,
                rank=rank,
                shuffle=True,
                seed=seed % 2**31,
                drop_last=False,
            )
        elif train:
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
