"""Evaluation: single- and multi-view accuracy, exactly once per sample, with reports.

Multi-view scores are the **sum of the per-view softmax probabilities** (the original
``validate``). Under ``torch.distributed`` every rank evaluates its ``rank::world`` share (no
padding), the ``(index, probabilities)`` pairs of all ranks are gathered and de-duplicated by
dataset index, so every video counts exactly once whatever the world size.

Every result carries its provenance (:mod:`.provenance`: weights and list fingerprints, views,
view mode, sampling, seed, videos evaluated and skipped), and :func:`write_report` writes it into
``metrics.json``. A report folder is written whole through :func:`xclip.atomic.atomic_dir` and
never replaces an earlier one unless asked: ``if_exists="version"`` (the default) picks the
first free ``NAME``, ``NAME-2``, ...; ``"refuse"`` raises ``FileExistsError``; ``"replace"``
swaps the old folder for the new one as a unit. Scores that are NaN/Inf (a diverged checkpoint,
fp16 overflow) stop the evaluation with :class:`NonFiniteScoresError` instead of being ranked.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

import xclip
from xclip.atomic import atomic_dir
from xclip.errors import InputError
from xclip_app.outputs import versioned

from . import distributed as D
from .provenance import dataset_fingerprint, model_provenance

log = logging.getLogger(__name__)

__all__ = [
    "EvalResult",
    "NonFiniteScoresError",
    "compute_metrics",
    "evaluate",
    "write_report",
]


class NonFiniteScoresError(InputError):
    """The model gave NaN/Inf scores: its weights or the precision are unusable (not the data)."""


@dataclass
class EvalResult:
    """Scores of one evaluation pass (all ranks together)."""

    top1: float  # percent
    top5: float
    mean_class_acc: float  # mean over classes that have samples
    num_samples: int
    num_classes: int
    views: str  # e.g. "4x3"
    confusion: np.ndarray  # [K, K] int64, rows = true class, columns = predicted class
    indices: np.ndarray  # [N] dataset indices, sorted
    labels: np.ndarray  # [N]
    probs: np.ndarray  # [N, K] float32 summed softmax over views
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # what reproduces the number: fingerprints, views, sampling, seeds (see .provenance)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1) if len(self.probs) else np.zeros(0, np.int64)

    def summary(self) -> dict[str, Any]:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "mean_class_acc": self.mean_class_acc,
            "num_samples": self.num_samples,
            "num_classes": self.num_classes,
            "views": self.views,
            "skipped": len(self.skipped),
            "seconds": round(self.seconds, 2),
        }


def compute_metrics(
    probs: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[float, float, float, np.ndarray]:
    """``(top1 %, top5 %, mean per-class accuracy %, confusion [K, K])``."""
    n = len(labels)
    if n == 0:
        return 0.0, 0.0, 0.0, np.zeros((num_classes, num_classes), np.int64)
    k = min(5, num_classes)
    # stable ranking: ties broken by class index, as torch.topk on CPU does in practice
    topk = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    top1 = float((topk[:, 0] == labels).mean() * 100)
    top5 = float((topk == labels[:, None]).any(1).mean() * 100)
    conf = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(conf, (labels, topk[:, 0]), 1)
    support = conf.sum(1)
    has = support > 0
    mean_cls = float((np.diag(conf)[has] / support[has]).mean() * 100) if has.any() else 0.0
    return top1, top5, mean_cls, conf


@torch.no_grad()
def evaluate(
    classifier: torch.nn.Module,
    loader,
    num_classes: int,
    *,
    text_features: torch.Tensor | None = None,
    device: torch.device | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
    progress: bool = False,
    desc: str = "eval",
) -> EvalResult:
    """Run ``classifier`` over ``loader`` (clips ``[B, V, T, 3, H, W]``) and score it.

    Views are forwarded one at a time (``[B, T, 3, H, W]``), as the original does, so memory does
    not grow with the number of views.
    """
    device = device or torch.device("cpu")
    was_training = classifier.training
    classifier.eval()
    t0 = time.perf_counter()
    idx_all, prob_all, lab_all = [], [], []
    it = loader
    bar = None
    if progress:
        bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)
        it = bar
    views = "?"
    nonfinite: list[int] = []  # dataset indices whose scores are NaN/Inf
    try:
        for clips, labels, index in it:
            clips = clips.to(device, non_blocking=True)
            b, v = clips.shape[:2]
            summed = torch.zeros(b, num_classes, device=device)
            for i in range(v):
                with autocast or contextlib.nullcontext():
                    logits = classifier(clips[:, i], text_features=text_features)
                summed += logits.float().softmax(-1)
            bad_rows = ~torch.isfinite(summed).all(1)
            if bool(bad_rows.any()):
                nonfinite += index[bad_rows.cpu()].tolist()
            idx_all.append(index.cpu())
            prob_all.append(summed.cpu())
            lab_all.append(labels.cpu())
            views = str(v)
    finally:
        if bar is not None:
            bar.close()
        classifier.train(was_training)
    local = (
        torch.cat(idx_all).numpy() if idx_all else np.zeros(0, np.int64),
        torch.cat(prob_all).numpy() if prob_all else np.zeros((0, num_classes), np.float32),
        torch.cat(lab_all).numpy() if lab_all else np.zeros(0, np.int64),
    )
    ds = loader.dataset
    nonfinite = sorted({i for part in D.all_gather_objects(nonfinite) for i in part})
    if nonfinite:  # every rank raises (none is left waiting in a collective)
        entries = getattr(ds, "entries", None)
        first = entries[nonfinite[0]].path if entries else f"index {nonfinite[0]}"
        raise NonFiniteScoresError(
            f"the model gave NaN/Inf scores for {len(nonfinite)} video(s) (first: {first}); the "
            "weights or the precision are unusable, not the videos: check the checkpoint (a "
            "diverged run?) or evaluate in fp32 (--precision fp32 / train.precision=fp32)"
        )
    parts = D.all_gather_objects(local)
    idx = np.concatenate([p[0] for p in parts])
    probs = np.concatenate([p[1] for p in parts]).astype(np.float32)
    labels = np.concatenate([p[2] for p in parts])
    # de-duplicate by dataset index (a sampler that pads would repeat samples), sort by index
    idx, first = np.unique(idx, return_index=True)
    probs, labels = probs[first], labels[first]
    top1, top5, mean_cls, conf = compute_metrics(probs, labels, num_classes)
    skipped = [b.path for b in getattr(loader, "skipped", [])]
    skipped = sorted({p for part in D.all_gather_objects(skipped) for p in part})
    views_str = (
        f"{ds.num_clips}x{ds.num_crops}" if hasattr(ds, "num_clips") and not ds.train else views
    )
    provenance = {
        **model_provenance(classifier),
        **dataset_fingerprint(ds),
        "views": views_str,
        "videos": len(ds) if hasattr(ds, "__len__") else None,
        "evaluated": len(idx),
        "skipped": len(skipped),
        "world_size": len(parts),
        "xclip_version": xclip.__version__,
    }
    return EvalResult(
        top1=top1,
        top5=top5,
        mean_class_acc=mean_cls,
        num_samples=len(idx),
        num_classes=num_classes,
        views=views_str,
        confusion=conf,
        indices=idx,
        labels=labels,
        probs=probs,
        skipped=skipped,
        seconds=time.perf_counter() - t0,
        provenance=provenance,
    )


# --- reports ----------------------------------------------------------------------------------


def _confusion_png(conf: np.ndarray, class_names: list[str], path: Path) -> None:
    """Row-normalised confusion matrix as a PNG: matplotlib (labelled) if installed, else a plain
    heatmap written with Pillow (one cell = a square of pixels, dark = 0, yellow = 1)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(conf / conf.sum(1, keepdims=True))
    k = len(conf)
    try:
        import matplotlib  # lazy: optional dependency

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # lazy: optional dependency

        size = min(40.0, max(4.0, k * 0.12))
        fig, ax = plt.subplots(figsize=(size, size))
        im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
        if k <= 120:
            ax.set_xticks(range(k), class_names, rotation=90, fontsize=max(3, 8 - k // 20))
            ax.set_yticks(range(k), class_names, fontsize=max(3, 8 - k // 20))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        fig.colorbar(im, fraction=0.046)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return
    except ImportError:
        pass
    from PIL import Image  # lazy: optional dependency

    cell = max(1, min(16, 800 // max(k, 1)))
    # a small viridis-like ramp: dark purple -> teal -> yellow
    stops = np.array(
        [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float
    )
    x = norm.clip(0, 1) * (len(stops) - 1)
    lo = np.floor(x).astype(int).clip(0, len(stops) - 2)
    frac = (x - lo)[..., None]
    rgb = (stops[lo] * (1 - frac) + stops[lo + 1] * frac).astype(np.uint8)
    img = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    Image.fromarray(img, "RGB").save(path)


def write_report(
    result: EvalResult,
    out_dir: str | Path,
    class_names: list[str],
    paths: list[str] | None = None,
    *,
    extra: dict[str, Any] | None = None,
    if_exists: Literal["version", "refuse", "replace"] = "version",
) -> Path:
    """Write ``metrics.json`` (scores, provenance, ``extra``), ``confusion.{npy,csv,png}``,
    ``per_class.csv`` and ``predictions.csv`` into a new folder, published as a unit.

    ``if_exists``: what to do when ``out_dir`` exists - ``"version"`` writes ``out_dir-2`` (the
    first free name) instead, ``"refuse"`` raises ``FileExistsError``, ``"replace"`` replaces it
    whole once the new report is complete. Returns the folder written.
    """
    if isinstance(class_names, str | bytes) or isinstance(paths, str | bytes):
        raise InputError(
            "class_names and paths must be lists of strings, not one string (it would be read "
            "character by character)"
        )
    if if_exists not in ("version", "refuse", "replace"):
        raise InputError(f"if_exists must be version, refuse or replace, got {if_exists!r}")
    class_names = list(class_names)
    if len(class_names) != result.num_classes:
        raise InputError(
            f"{len(class_names)} class names for a result over {result.num_classes} classes"
        )

    def fill(tmp: Path) -> None:
        _write_report_files(result, tmp, class_names, paths, extra or {})

    out = Path(out_dir)
    if if_exists != "version":
        return atomic_dir(out, fill, overwrite=if_exists == "replace", kind="report")
    for _ in range(100):  # another process may take the free name between check and rename
        target = versioned(out)
        try:
            return atomic_dir(target, fill, overwrite=False, kind="report")
        except FileExistsError:
            continue
    raise FileExistsError(f"could not find a free name for the report {out}")


def _write_report_files(
    result: EvalResult,
    out: Path,
    class_names: list[str],
    paths: list[str] | None,
    extra: dict[str, Any],
) -> None:
    conf = result.confusion
    np.save(out / "confusion.npy", conf)
    with open(out / "confusion.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["true \\ predicted", *class_names])
        for name, row in zip(class_names, conf, strict=False):
            w.writerow([name, *row.tolist()])
    _confusion_png(conf, class_names, out / "confusion.png")
    support = conf.sum(1)
    predicted = conf.sum(0)
    correct = np.diag(conf)
    top5_hits = np.zeros(len(class_names), np.int64)
    if len(result.probs):
        k = min(5, len(class_names))
        topk = np.argsort(-result.probs, axis=1, kind="stable")[:, :k]
        hit = (topk == result.labels[:, None]).any(1)
        np.add.at(top5_hits, result.labels, hit.astype(np.int64))
    with open(out / "per_class.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["id", "name", "samples", "correct", "top1", "top5", "precision", "most_confused_with"]
        )
        for i, name in enumerate(class_names):
            row = conf[i].copy()
            row[i] = 0
            other = int(row.argmax()) if row.sum() else -1
            w.writerow(
                [
                    i,
                    name,
                    int(support[i]),
                    int(correct[i]),
                    f"{100 * correct[i] / support[i]:.2f}" if support[i] else "",
                    f"{100 * top5_hits[i] / support[i]:.2f}" if support[i] else "",
                    f"{100 * correct[i] / predicted[i]:.2f}" if predicted[i] else "",
                    class_names[other] if other >= 0 else "",
                ]
            )
    with open(out / "predictions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["index", "path", "label", "prediction", "score"])
        for i, lab, p in zip(result.indices, result.labels, result.probs, strict=False):
            pred = int(p.argmax())
            w.writerow(
                [int(i), paths[int(i)] if paths else "", int(lab), pred, f"{float(p[pred]):.5f}"]
            )
    metrics = {
        **result.summary(),
        "skipped_files": result.skipped,
        "provenance": {**result.provenance, **extra},
    }
    with open(out / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")


def format_result(result: EvalResult) -> str:
    return (
        f"{result.views} views, {result.num_samples} videos: top-1 {result.top1:.2f}%  "
        f"top-5 {result.top5:.2f}%  mean class {result.mean_class_acc:.2f}%"
        + (f"  ({len(result.skipped)} unreadable skipped)" if result.skipped else "")
    )


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and (population, numpy default) standard deviation; std 0 for one value."""
    if not values:
        return math.nan, math.nan
    a = np.asarray(values, float)
    return float(a.mean()), float(a.std())
