"""The training order of one process: a shuffled, sharded permutation per epoch that can start
part-way through an epoch, so a mid-epoch resume sees exactly the samples left."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["ResumableSampler"]


class ResumableSampler(Sampler[int]):
    """``DistributedSampler(shuffle=True)`` semantics (permutation from ``seed + epoch``, padded
    to a multiple of the world size, rank ``r`` takes ``r::world``) that can start an epoch at a
    given position (``start``: samples of this rank to skip in the next pass, then reset to 0)."""

    def __init__(
        self, n: int, world_size: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True
    ) -> None:
        self.n, self.world, self.rank, self.seed, self.shuffle = n, world_size, rank, seed, shuffle
        self.epoch = 0
        self.start = 0
        self.num_samples = math.ceil(n / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> list[int]:
        """This rank's whole order for the current epoch."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = self.num_samples * self.world
        if total > len(order):  # pad with the first samples, as DistributedSampler
            order += (order * math.ceil(total / len(order)))[: total - len(order)]
        return order[self.rank : total : self.world]

    def __iter__(self) -> Iterator[int]:
        mine = self.indices()[self.start :]
        self.start = 0
        return iter(mine)

    def __len__(self) -> int:
        return self.num_samples
