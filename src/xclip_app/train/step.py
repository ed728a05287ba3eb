"""The optimisation step of training, one object for the trainer and for the benchmarks that time it.

:class:`TrainStep` is forward under the run's precision -> soft-target cross-entropy on the
class-text features (plus the distillation term when there is one) -> scaled backward, and
:meth:`TrainStep.update` clips the gradients, steps the optimizer (through the fp16
``GradScaler``) and clears them. The trainer adds what is around a step (data, mixup, gradient
accumulation, the loss read back per window, checkpoints); ``benchmarks/gpu_check.py`` times
exactly this object, so its training rows measure the trainer's own step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from xclip.data.soft_targets import soft_target_cross_entropy
from xclip.precision import autocast

__all__ = ["TrainStep"]


class TrainStep:
    """One step of training a classifier (:func:`~xclip_app.train.classifier.build_classifier`).

    Args:
        module: what runs the forward pass (the classifier, or its DDP wrapper).
        optimizer: the optimizer of the classifier's parameters.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; fp16 scales the loss).
        device: where the step runs.
        text_features: cached class-text features ``[K, C]`` (a frozen text tower), or None
            to run ``tokens`` through the text tower at every step.
        tokens, num_templates: the class prompts (needed when ``text_features`` is None).
        distiller: a :class:`~xclip_app.train.distillation.FeatureDistillation` or None.
        clip_grad_norm: the gradient norm limit (0: no clipping).
        loss_fn: ``(logits, soft targets) -> loss`` (the soft-target cross-entropy).
        scaler: the ``GradScaler`` to use (default: a new one, enabled for fp16 only; the
            trainer passes its own, which its checkpoints save).
    """

    def __init__(
        self,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        precision: str,
        device: torch.device,
        text_features: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
        num_templates: int = 1,
        distiller: Any = None,
        clip_grad_norm: float = 0.0,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = soft_target_cross_entropy,
        scaler: torch.amp.GradScaler | None = None,
    ) -> None:
        self.module, self.optimizer = module, optimizer
        self.precision, self.device = precision, device
        self.text_features, self.tokens, self.num_templates = text_features, tokens, num_templates
        self.distiller = distiller
        self.clip_grad_norm = clip_grad_norm
        self.loss_fn = loss_fn
        self.scaler = (
            torch.amp.GradScaler("cuda", enabled=precision == "fp16") if scaler is None else scaler
        )

    @property
    def classifier(self) -> torch.nn.Module:
        """The classifier itself (inside a DDP wrapper when there is one)."""
        ddp = torch.nn.parallel.DistributedDataParallel
        return self.module.module if isinstance(self.module, ddp) else self.module

    def loss(self, clips: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of a batch: clips ``[B, T, 3, H, W]``, soft targets ``[B, K]``."""
        extra = None
        with autocast(self.precision, self.device):
            kw = {"return_features": True} if self.distiller is not None else {}
            if self.text_features is not None or not self.classifier.uses_text:
                out = self.module(clips, text_features=self.text_features, **kw)
            else:
                out = self.module(clips, tokens=self.tokens, num_templates=self.num_templates, **kw)
            if self.distiller is not None:
                out, video, text = out
                trained_text = text if self.text_features is None else None
                extra = self.distiller.loss(
                    clips, video, trained_text, self.tokens, self.num_templates
                )
        loss = self.loss_fn(out.float(), target)
        return loss if extra is None else loss + extra.float()

    def backward(self, loss: torch.Tensor, accumulation: int = 1) -> None:
        """Gradients of ``loss / accumulation`` (scaled for fp16)."""
        self.scaler.scale(loss / accumulation).backward()

    def update(self) -> None:
        """Clip the gradients (``clip_grad_norm``), step the optimizer, clear the gradients."""
        if self.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.classifier.parameters(), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def __call__(self, clips: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """A whole step without accumulation: the loss (detached, still on the device)."""
        loss = self.loss(clips, target)
        self.backward(loss)
        self.update()
        return loss.detach()
