"""K-shot training lists: K videos per class drawn with a seed (the few-shot protocol)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from xclip.data.annotations import VideoEntry
from xclip.errors import InputError


def kshot_entries(
    entries: Sequence[VideoEntry], k: int, seed: int = 0, *, allow_fewer: bool = False
) -> list[VideoEntry]:
    """K videos per class drawn at random (``numpy.random.default_rng(seed)``, classes in label
    order, without replacement); the result keeps the input order. A class with fewer than K
    videos is an error unless ``allow_fewer`` (then all its videos are kept)."""
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        by_class[e.label].append(i)
    if not by_class:
        raise InputError("no videos to sample from")
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    short = []
    for label in sorted(by_class):
        idx = by_class[label]
        if len(idx) < k:
            if not allow_fewer:
                short.append(f"{label} ({len(idx)})")
                continue
            keep += idx
        else:
            keep += [idx[j] for j in rng.choice(len(idx), size=k, replace=False)]
    if short:
        raise InputError(
            f"{len(short)} classes have fewer than k={k} videos: {', '.join(short[:20])}"
        )
    return [entries[i] for i in sorted(keep)]
