"""Soft class targets: label-smoothed one-hot vectors, and the cross-entropy against them.

Training with label smoothing and with mixup/cutmix (:mod:`xclip.data.mixup`) compares the logits
with a distribution over the K classes instead of one class index.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xclip.errors import InputError

__all__ = [
    "SoftTargetCrossEntropy",
    "check_label_range",
    "smoothed_one_hot",
    "soft_target_cross_entropy",
]


def check_label_range(labels: torch.Tensor, num_classes: int) -> None:
    """``InputError`` unless every label is in ``[0, num_classes)``. Reading the values is a host
    sync for a tensor on a GPU: call it on the host copy, before the labels move."""
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(f"labels must be in [0, {num_classes}), got {labels.view(-1).tolist()}")


def smoothed_one_hot(
    labels: torch.Tensor, num_classes: int, smoothing: float = 0.0
) -> torch.Tensor:
    """``[B]`` int labels -> ``[B, K]`` float, off = s/K, on = 1 - s + s/K. Labels on the CPU are
    checked (:func:`check_label_range`); on an accelerator they are not (that check would wait
    for the device at every step): check them on the host before they move."""
    labels = labels.long().view(-1, 1)
    if labels.device.type == "cpu":
        check_label_range(labels, num_classes)
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    out = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return out.scatter_(1, labels, on)


def soft_target_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``sum_k -target_k * log_softmax(logits)_k`` (timm's
    ``SoftTargetCrossEntropy``, used by the original with mixup)."""
    return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()


class SoftTargetCrossEntropy(nn.Module):
    """:func:`soft_target_cross_entropy` as a module: ``loss(logits [B, K], target [B, K])``."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_target_cross_entropy(logits, target)
