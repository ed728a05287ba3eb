"""Label-smoothed one-hot targets and the soft-target cross-entropy."""

from __future__ import annotations

import pytest
import torch

from xclip.data.soft_targets import (
    SoftTargetCrossEntropy,
    check_label_range,
    smoothed_one_hot,
    soft_target_cross_entropy,
)
from xclip.errors import InputError


def test_smoothed_one_hot():
    t = smoothed_one_hot(torch.tensor([0, 2]), 4, 0.1)
    assert torch.allclose(t[0], torch.tensor([0.925, 0.025, 0.025, 0.025]))
    assert torch.allclose(t.sum(1), torch.ones(2))
    with pytest.raises(ValueError):
        smoothed_one_hot(torch.tensor([4]), 4)


def test_soft_target_cross_entropy():
    logits = torch.randn(5, 7)
    labels = torch.randint(0, 7, (5,))
    hard = torch.nn.functional.one_hot(labels, 7).float()
    torch.testing.assert_close(
        soft_target_cross_entropy(logits, hard), torch.nn.functional.cross_entropy(logits, labels)
    )
    soft = smoothed_one_hot(labels, 7, 0.1)
    torch.testing.assert_close(
        SoftTargetCrossEntropy()(logits, soft),
        torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1),
    )


def test_labels_on_a_device_are_not_read_per_step():
    """Issue 20: the range check read the labels' values at every training step, a host sync on a
    GPU. A tensor whose values cannot be read (the meta device stands for a GPU's, which would
    need a sync) must go through; the trainer checks the host copy instead."""
    labels = torch.tensor([1, 2], device="meta")
    out = smoothed_one_hot(labels, 4, 0.1)
    assert out.shape == (2, 4) and out.device.type == "meta"
    with pytest.raises(InputError, match=r"labels must be in \[0, 4\)"):
        check_label_range(torch.tensor([4]), 4)
