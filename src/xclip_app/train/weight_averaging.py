"""Weight averaging over training: an exponential moving average (EMA) or a uniform average of
the weights after every optimizer step from a given epoch on (SWA; Open-VCLIP and FROSTER
average weights over training to keep the generalisation of the points they pass through).

Only trained parameters are averaged (frozen ones do not move). The average lives in float32 on
the parameters' device, is saved in every training checkpoint (``train_state.pt``: a resume
continues it exactly) and replaces the trained weights once the last epoch is trained, so the
last checkpoint, the validation after it, the final evaluation and ``best/`` of that epoch are
the averaged model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """``update(step)`` after each optimizer step; ``apply_to()`` writes the average into the
    module. ``mode``: ``"ema"`` or ``"uniform"``; steps before ``start_step`` are not averaged
    (the EMA starts from the weights at ``start_step``)."""

    def __init__(self, module: nn.Module, mode: str, decay: float = 0.999, start_step: int = 0):
        if mode not in ("ema", "uniform"):
            raise ValueError(f"mode must be 'ema' or 'uniform', got {mode!r}")
        self.module, self.mode, self.decay, self.start_step = module, mode, decay, start_step
        self.params = {n: p for n, p in module.named_parameters() if p.requires_grad}
        self.average: dict[str, torch.Tensor] = {}
        self.count = 0  # the number of weight states averaged

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the weights after optimizer step ``step`` (a global, 0-based iteration)."""
        if step < self.start_step:
            return
        if self.count == 0:
            self.average = {n: p.detach().float().clone() for n, p in self.params.items()}
        else:
            w = 1.0 - self.decay if self.mode == "ema" else 1.0 / (self.count + 1)
            for n, p in self.params.items():
                self.average[n].lerp_(p.detach().float(), w)
        self.count += 1

    @torch.no_grad()
    def apply_to(self) -> bool:
        """Copy the average into the module's parameters; False when nothing was averaged."""
        if not self.count:
            return False
        for n, p in self.params.items():
            p.copy_(self.average[n].to(p.dtype))
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "count": self.count,
            "average": {n: t.cpu() for n, t in self.average.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("mode") != self.mode:
            raise ValueError(
                f"the checkpoint averages with {state.get('mode')!r}, not {self.mode!r}"
            )
        self.count = int(state["count"])
        dev = {n: p.device for n, p in self.params.items()}
        self.average = {n: t.to(dev[n]) for n, t in state["average"].items()}
