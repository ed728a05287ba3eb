"""The demo's metrics beyond top-1: is a video's class scored above its time reversal?

The second verb of every pair (``"moving left"``) is exactly the first (``"moving right"``) played
backwards, so a model blind to frame order cannot tell the two classes apart: its pair accuracy
sits at chance, 50 %. Colour and motion-type accuracy tell whether the remaining errors are the
direction or something else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .world import PAIRS

__all__ = ["pair_metrics"]


def pair_metrics(
    probs: np.ndarray, labels: np.ndarray, names: list[str], table: list[dict]
) -> dict:
    """Time-reversal metrics of class scores ``probs [N, K]`` for true ``labels [N]``.

    For each video: is its class scored above its reversal partner (same colour, same pair, other
    direction)? Chance is 50 %. Returns percentages: ``pair_accuracy``, ``per_pair`` (by pair,
    ``"moving right / moving left"``), ``colour_accuracy`` and ``motion_type_accuracy`` (of the
    argmax prediction). ``names`` are the K class names, ``table`` the rows of
    :func:`~xclip_app.demo.generate.class_table`.
    """
    info = {r["name"]: r for r in table}
    idx = {n: i for i, n in enumerate(names)}
    partner = []
    for n in names:
        r = info[n]
        other = [
            m for m in names
            if info[m]["colour"] == r["colour"] and info[m]["pair"] == r["pair"] and m != n
        ]  # fmt: skip
        partner.append(idx[other[0]] if other else -1)
    out: dict[str, Any] = {"per_pair": {}}
    wins = []
    pair_of = []
    for p, y in zip(probs, labels, strict=True):
        q = partner[int(y)]
        if q < 0:
            continue
        wins.append(float(p[int(y)] > p[q]))
        pair_of.append(info[names[int(y)]]["pair"])
    wins_a, pair_a = np.asarray(wins), np.asarray(pair_of)
    out["pair_accuracy"] = float(wins_a.mean() * 100) if len(wins_a) else float("nan")
    for pi, pair in enumerate(PAIRS):
        sel = pair_a == pi
        if sel.any():
            out["per_pair"][" / ".join(pair)] = float(wins_a[sel].mean() * 100)
    # accuracy of the colour and of the motion pair alone (is the error the direction?)
    preds = probs.argmax(1)
    out["colour_accuracy"] = float(
        np.mean(
            [
                info[names[a]]["colour"] == info[names[b]]["colour"]
                for a, b in zip(preds, labels, strict=True)
            ]
        )
        * 100
    )
    out["motion_type_accuracy"] = float(
        np.mean(
            [
                info[names[a]]["pair"] == info[names[b]]["pair"]
                for a, b in zip(preds, labels, strict=True)
            ]
        )
        * 100
    )
    return out
