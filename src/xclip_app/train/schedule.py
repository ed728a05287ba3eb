"""The original's per-iteration cosine LR schedule with linear warmup (timm ``CosineLRScheduler``).

The original builds ``CosineLRScheduler(t_initial=EPOCHS*N, lr_min=LR/100, warmup_lr_init=0,
warmup_t=WARMUP_EPOCHS*N, cycle_limit=1, t_in_epochs=False)`` with N = loader iterations per
epoch, and calls ``step_update(epoch*N + idx)`` after each optimizer step. Reproduced here, with
its quirks (see ``docs/training.md``):

* **warmup_prefix=False**: the cosine runs over the whole ``0..t_initial`` range and the warmup only
  *overrides* its first ``warmup_t`` iterations. The LR therefore jumps from ~base (end of the
  linear warmup) to ``cosine(warmup_t)`` (0.93 x base for 5 of 30 epochs) when warmup ends.
* ``lr_min`` is **one absolute value for every group**: the 10x groups also decay to LR/100, not to
  10 x LR/100.
* Warmup is linear from ``warmup_lr_init=0`` to each group's own base LR:
  ``lr = t * base / warmup_t``. The scheduler sets every group to 0 when it is built, so the very
  first optimizer step of a run uses LR 0 (it only fills AdamW's moment estimates).
* ``t`` counts loader iterations, also with gradient accumulation (the scheduler is only stepped
  on optimizer steps, with the iteration index).
* Past ``t_initial`` the LR stays at ``lr_min``.
"""

from __future__ import annotations

import math

import torch

from xclip.errors import InputError

__all__ = ["CosineWarmupSchedule", "cosine_lr"]


def cosine_lr(
    t: int,
    base_lr: float,
    t_initial: int,
    lr_min: float,
    warmup_t: int = 0,
    warmup_lr_init: float = 0.0,
    warmup_prefix: bool = False,
) -> float:
    """LR at iteration ``t`` (timm ``CosineLRScheduler._get_lr`` with cycle_limit=1, t_mul=1)."""
    if t < warmup_t:
        return warmup_lr_init + t * (base_lr - warmup_lr_init) / warmup_t
    if warmup_prefix:
        t = t - warmup_t
    if t >= t_initial:  # cycle index i = t // t_initial >= cycle_limit (1)
        return lr_min
    return lr_min + 0.5 * (base_lr - lr_min) * (1 + math.cos(math.pi * t / t_initial))


# Not torch's LambdaLR/SequentialLR: their LRs differ (1 ulp, ~9% of steps) and so do their states
class CosineWarmupSchedule:
    """Sets each param group's ``lr`` from its own base LR (``group["initial_lr"]``)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        t_initial: int,
        lr_min: float,
        warmup_t: int = 0,
        warmup_lr_init: float = 0.0,
        warmup_prefix: bool = False,
    ) -> None:
        if t_initial < 1:
            raise InputError(f"t_initial must be >= 1, got {t_initial}")
        self.optimizer = optimizer
        self.t_initial, self.lr_min = int(t_initial), float(lr_min)
        self.warmup_t, self.warmup_lr_init = int(warmup_t), float(warmup_lr_init)
        self.warmup_prefix = warmup_prefix
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_t: int | None = None
        # timm: the groups start at warmup_lr_init when there is a warmup, else at their base LR
        init = [self.warmup_lr_init] * len(self.base_lrs) if self.warmup_t else self.base_lrs
        self._set(init)

    def _set(self, lrs: list[float]) -> None:
        for g, lr in zip(self.optimizer.param_groups, lrs, strict=False):
            g["lr"] = lr

    def lrs_at(self, t: int) -> list[float]:
        return [
            cosine_lr(
                t,
                base,
                self.t_initial,
                self.lr_min,
                self.warmup_t,
                self.warmup_lr_init,
                self.warmup_prefix,
            )  # fmt: skip
            for base in self.base_lrs
        ]

    def step_update(self, t: int) -> None:
        """Called after the optimizer step of loader iteration ``t`` (global, 0-based)."""
        self.last_t = int(t)
        self._set(self.lrs_at(self.last_t))

    def state_dict(self) -> dict:
        return {
            "last_t": -1 if self.last_t is None else self.last_t,
            "base_lrs": list(self.base_lrs),
            "t_initial": self.t_initial,
            "warmup_t": self.warmup_t,
            "lr_min": self.lr_min,
        }

    def load_state_dict(self, state: dict) -> None:
        for key in ("t_initial", "warmup_t"):
            if int(state[key]) != getattr(self, key):
                raise InputError(
                    f"the checkpoint's schedule has {key}={state[key]} but this run computes "
                    f"{getattr(self, key)}: train.epochs, train.warmup_epochs, "
                    "train.max_steps_per_epoch or the train list changed since the checkpoint; "
                    "resume with the run's values"
                )
        self.base_lrs = [float(v) for v in state["base_lrs"]]
        for g, base in zip(self.optimizer.param_groups, self.base_lrs, strict=False):
            g["initial_lr"] = base
        t = int(state["last_t"])
        if t >= 0:
            self.step_update(t)
        else:
            self.last_t = None
            self._set(
                [self.warmup_lr_init] * len(self.base_lrs) if self.warmup_t else self.base_lrs
            )
