"""Mixup / CutMix blending as the original CutmixMixupBlending."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xclip.data.mixup import CutmixMixupBlending
from xclip.data.soft_targets import smoothed_one_hot


def batch(b=4, t=3, h=20, w=24):
    # each sample constant = its index, so the source of every pixel is visible
    return torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1, 1).expand(b, t, 3, h, w).clone()


def test_cutmix_one_box_for_all_frames_and_samples():
    m = CutmixMixupBlending(5, switch_prob=1.0, seed=0)
    for _ in range(20):
        x = batch()
        labels = torch.tensor([0, 1, 2, 3])
        out, target = m(x, labels)
        assert m.last["mode"] == "cutmix"
        x1, y1, x2, y2 = m.last["box"]
        perm = m.last["perm"]
        inside = torch.zeros(20, 24, dtype=torch.bool)
        inside[y1:y2, x1:x2] = True
        for b in range(4):
            for f in range(3):
                for c in range(3):
                    img = out[b, f, c]
                    assert (img[inside] == perm[b]).all() and (img[~inside] == b).all()
        lam = 1 - (x2 - x1) * (y2 - y1) / (20 * 24)
        assert m.last["lam"] == pytest.approx(lam)
        one = smoothed_one_hot(labels, 5, 0.1)
        torch.testing.assert_close(target, lam * one + (1 - lam) * one[perm])
        assert torch.equal(x, batch())  # input not modified (inplace=False)


def test_mixup_blends_images_and_labels():
    m = CutmixMixupBlending(5, switch_prob=0.0, seed=1)
    x = batch()
    labels = torch.tensor([4, 3, 2, 1])
    out, target = m(x, labels)
    lam, perm = m.last["lam"], m.last["perm"]
    torch.testing.assert_close(out, lam * x + (1 - lam) * x[perm])
    one = smoothed_one_hot(labels, 5, 0.1)
    torch.testing.assert_close(target, lam * one + (1 - lam) * one[perm])
    assert torch.allclose(target.sum(1), torch.ones(4))


def test_switch_probability_and_lambda_distributions():
    m = CutmixMixupBlending(3, seed=2)
    modes, mix_lams = [], []
    for _ in range(400):
        m(torch.zeros(2, 1, 3, 8, 8), torch.tensor([0, 1]))
        modes.append(m.last["mode"])
        if m.last["mode"] == "mixup":
            mix_lams.append(m.last["lam"])
    assert 0.42 < modes.count("cutmix") / 400 < 0.58
    # Beta(0.8, 0.8) has mean 0.5 and variance 1/(4*2.6) ~ 0.096
    assert abs(np.mean(mix_lams) - 0.5) < 0.06 and abs(np.var(mix_lams) - 0.096) < 0.03


def test_seeded_reproducible():
    a = CutmixMixupBlending(3, seed=3)(batch(), torch.tensor([0, 1, 2, 0]))
    b = CutmixMixupBlending(3, seed=3)(batch(), torch.tensor([0, 1, 2, 0]))
    torch.testing.assert_close(a, b)
