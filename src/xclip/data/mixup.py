"""Mixup / CutMix on video batches with soft targets, as the original ``CutmixMixupBlending``.

Labels become label-smoothed one-hot vectors (:func:`~xclip.data.soft_targets.smoothed_one_hot`,
off = s/K, on = 1 - s + s/K), mixed like the videos. For each batch, with
probability ``switch_prob`` CutMix is applied (lambda ~ Beta(1, 1); **one box for all frames and
all samples**, side ``sqrt(1 - lambda)`` of W and H, a uniform random centre, clamped to the
image; the partner of sample b is ``perm[b]`` for a random permutation; lambda is then recomputed
from the clamped box area), otherwise Mixup (lambda ~ Beta(0.8, 0.8), same kind of partner).
Works on any ``[B, ..., H, W]`` float batch (``[B, T, 3, H, W]`` or ``[B, V, T, 3, H, W]``).

Randomness comes from a :class:`numpy.random.Generator` (seeded for reproducibility), not from
torch's global RNG as the original.
"""

from __future__ import annotations

import numpy as np
import torch

from xclip.errors import InputError

from .soft_targets import smoothed_one_hot

__all__ = ["CutmixMixupBlending", "cutmix_box"]


def cutmix_box(
    height: int, width: int, lam: float, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """The original ``rand_bbox``: ``(x1, y1, x2, y2)`` with sides ``int(W*sqrt(1-lam))`` and
    ``int(H*sqrt(1-lam))`` around a uniform centre, clamped to the image."""
    cut = float(np.sqrt(1.0 - lam))
    cut_w, cut_h = int(width * cut), int(height * cut)
    cx, cy = int(rng.integers(width)), int(rng.integers(height))
    x1, x2 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
    y1, y2 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
    return int(x1), int(y1), int(x2), int(y2)


class CutmixMixupBlending:
    """``blend(videos [B, ..., H, W], labels [B]) -> (mixed videos, soft targets [B, K])``.

    ``last`` records the previous call's choice (``"cutmix"``/``"mixup"``), lambda, permutation
    and box, for logging and tests.
    """

    def __init__(
        self,
        num_classes: int,
        smoothing: float = 0.1,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        switch_prob: float = 0.5,
        *,
        seed: int | np.random.Generator | None = None,
        inplace: bool = False,
    ) -> None:
        if num_classes < 1:
            raise InputError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.smoothing = smoothing
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.switch_prob = switch_prob
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.inplace = inplace
        self.last: dict = {}

    def __call__(
        self, videos: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        target = smoothed_one_hot(labels, self.num_classes, self.smoothing).to(
            device=videos.device,
            dtype=videos.dtype if videos.is_floating_point() else torch.float32,
        )
        b = videos.shape[0]
        if self.rng.random() < self.switch_prob:
            return self._cutmix(videos, target, b)
        return self._mixup(videos, target, b)

    def _perm(self, b: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(the permutation on ``device``, its host copy for :attr:`last`): reading it back
        from a GPU would make the host wait for the GPU at every training step."""
        host = torch.from_numpy(self.rng.permutation(b))
        return host.to(device), host

    def _cutmix(self, videos, target, b):
        perm, perm_host = self._perm(b, videos.device)
        lam = float(self.rng.beta(self.cutmix_alpha, self.cutmix_alpha))
        h, w = videos.shape[-2:]
        x1, y1, x2, y2 = cutmix_box(h, w, lam, self.rng)
        out = videos if self.inplace else videos.clone()
        out[..., y1:y2, x1:x2] = videos[perm][..., y1:y2, x1:x2]
        lam = 1.0 - (x2 - x1) * (y2 - y1) / float(w * h)
        mixed = lam * target + (1.0 - lam) * target[perm]
        self.last = {"mode": "cutmix", "lam": lam, "perm": perm_host, "box": (x1, y1, x2, y2)}
        return out, mixed

    def _mixup(self, videos, target, b):
        lam = float(self.rng.beta(self.mixup_alpha, self.mixup_alpha))
        perm, perm_host = self._perm(b, videos.device)
        mixed_v = lam * videos + (1.0 - lam) * videos[perm]
        if self.inplace:
            videos.copy_(mixed_v)
            mixed_v = videos
        mixed = lam * target + (1.0 - lam) * target[perm]
        self.last = {"mode": "mixup", "lam": lam, "perm": perm_host, "box": None}
        return mixed_v, mixed
