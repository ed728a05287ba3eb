"""Choosing the interpolation weight ``alpha`` on held-out classes (Open-VCLIP's test-time
weight interpolation, WiSE-FT's mixing coefficient).

``alpha`` is the weight of the fine-tuned model in ``(1 - alpha) * CLIP + alpha * fine-tuned``
(:mod:`xclip.interpolation`). The classes used to pick it must be ones the model was *not*
fine-tuned on (a validation split of other classes), or the choice favours the fine-tuned end and
says nothing about open-vocabulary recognition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

import xclip
from xclip.data import VideoDataset, build_dataloader
from xclip.data.annotations import read_labels_csv
from xclip.inference.labels import ensemble_text_features, prompts
from xclip.interpolation import interpolate_models

from .classifier import TrainableClassifier
from .evaluate import EvalResult, evaluate

log = logging.getLogger(__name__)

__all__ = ["AlphaScore", "choose_alpha", "evaluate_model", "parse_alphas"]


@dataclass(frozen=True)
class AlphaScore:
    alpha: float
    top1: float
    top5: float


def parse_alphas(text: str) -> list[float]:
    """``"0,0.25,0.5"`` -> ``[0.0, 0.25, 0.5]``; each in [0, 1] (``ValueError`` otherwise)."""
    try:
        values = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(
            f"alphas must be comma-separated numbers in [0, 1], got {text!r}"
        ) from None
    if not values or any(not 0.0 <= a <= 1.0 for a in values):
        raise ValueError(f"alphas must be comma-separated numbers in [0, 1], got {text!r}")
    return sorted(set(values))


def evaluate_model(
    model: xclip.XCLIP,
    val_file: str | Path,
    label_list: str | Path,
    root: str | Path = "",
    *,
    templates: Sequence[str] = ("{}",),
    device: torch.device | str = "cpu",
    batch_size: int = 16,
    workers: int = 1,
    progress: bool = False,
) -> EvalResult:
    """Single-view (centre clip, centre crop) top-1/top-5 of ``model`` on an annotation list,
    class texts from ``label_list`` (through ``templates``, averaged when several)."""
    names = read_labels_csv(label_list)
    ds = VideoDataset(
        str(val_file), str(root) if root else None, str(label_list),
        preprocess=model.preprocess, mode="test",
        num_clips=1, num_crops=1, view_mode="uniform", seed=0,
    )  # fmt: skip
    loader = build_dataloader(
        ds, batch_size=batch_size, workers=workers, train=False, persistent_workers=False
    )
    clf = TrainableClassifier(model).to(device)
    tokens = xclip.tokenize(prompts(names, list(templates))).to(device)
    text = ensemble_text_features(clf.text_features(tokens), len(templates))
    with torch.inference_mode():
        return evaluate(
            clf, loader, len(names), text_features=text, device=torch.device(device),
            progress=progress, desc="alpha",
        )  # fmt: skip


def choose_alpha(
    source: xclip.XCLIP,
    finetuned: xclip.XCLIP,
    alphas: Sequence[float],
    score: Callable[[xclip.XCLIP], EvalResult],
) -> tuple[float, list[AlphaScore]]:
    """The ``alpha`` of ``alphas`` whose interpolated model has the best top-1 under ``score``
    (ties: the larger alpha, the one nearer the fine-tuned model), and every score."""
    rows = []
    for a in sorted(alphas):
        res = score(interpolate_models(source, finetuned, a))
        rows.append(AlphaScore(a, res.top1, res.top5))
        log.info("alpha %.2f: top-1 %.2f%%, top-5 %.2f%%", a, res.top1, res.top5)
    best = max(rows, key=lambda r: (r.top1, r.alpha))
    return best.alpha, rows
