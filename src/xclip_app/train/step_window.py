"""Per-step training statistics kept on the device and read back once per window of steps.

Reading a loss back (``loss.item()``, ``float(loss)``) makes the host wait for the GPU at every
step, so the next step's kernels cannot be queued while this one runs. :class:`StepWindow` keeps
each step's (loss sum, count) tensor where it was computed and reads the whole window back with
one copy: every ``every`` steps, before a checkpoint and at the end of an epoch. On the CPU the
trainer uses ``every=1`` (nothing to overlap), which is the step-by-step behaviour exactly.

A non-finite loss is still found, and named by its own iteration, at the next read-back; the
steps after it until then have run (their weights are not saved: a checkpoint always reads the
window back first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

__all__ = ["StepRow", "StepWindow"]


@dataclass(frozen=True)
class StepRow:
    """One training step as read back: its iteration, mean loss over the global batch, the
    learning rate it used, its clips and the clips/s of its window."""

    iteration: int
    loss: float
    lr: float
    clips: int
    clips_per_s: float


class StepWindow:
    """``add()`` each step's ``[loss_sum, count]`` tensor; ``flush()`` reads them all back."""

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self._stats: list[torch.Tensor] = []
        self._meta: list[tuple[int, float, int]] = []
        self._t0 = time.perf_counter()

    def __len__(self) -> int:
        return len(self._stats)

    def restart_clock(self) -> None:
        """Time the next window from now (after a pause the window should not count)."""
        self._t0 = time.perf_counter()

    def add(self, iteration: int, stat: torch.Tensor, lr: float, clips: int) -> None:
        """``stat``: float64 ``[2]`` (loss summed over processes, number of processes)."""
        self._stats.append(stat.detach())
        self._meta.append((iteration, lr, clips))

    def full(self) -> bool:
        return len(self._stats) >= self.every

    def flush(self) -> list[StepRow]:
        """The window's rows, oldest first (one host-device synchronisation), and a new window."""
        if not self._stats:
            return []
        stats = torch.stack(self._stats).cpu()  # [n, 2]: the one read-back of the window
        now = time.perf_counter()
        clips = sum(m[2] for m in self._meta)
        speed = clips / max(now - self._t0, 1e-9)
        rows = [
            StepRow(it, float(s[0] / s[1]), lr, n, speed)
            for (it, lr, n), s in zip(self._meta, stats, strict=True)
        ]
        self._stats, self._meta, self._t0 = [], [], now
        return rows
