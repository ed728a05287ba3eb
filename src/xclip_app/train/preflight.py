"""Checks that run before the first epoch, so that predictable failures cost seconds, not a run.

:func:`check_before_training` (called by the trainer's set-up, after the loaders are built and
before the model is):

* **Validation headers**: when the run will evaluate (``test.eval_every`` or
  ``test.final_eval``), the header of every video of ``data.val_file`` is opened - metadata
  only, no decoding, in threads, with a progress bar (:func:`xclip.data.scan.scan_dataset`,
  depth ``"header"``). Unreadable ones end the run at once with one line listing them
  (:class:`~xclip.data.loader.BadVideosError`, exit code 2) naming ``xclip-video scan`` and
  ``data.skip_bad=true``; with ``data.skip_bad=true`` they are logged and the run goes on (each
  evaluation then skips and lists them). ``data.preflight=false`` turns the check off (e.g. on
  a slow network file system). Damage inside a stream is not found this way: the opt-in full
  scan ``xclip-video scan LIST --decode all`` finds it.
* **Horizontal flip and directional classes**: the paper's augmentation flips clips left-right
  (``aug.flip``, p=0.5). For classes such as "pushing something from left to right" or
  "turning clockwise" a flipped clip shows another class; one warning says so when ``aug.flip``
  is on and a class name contains a direction word (:data:`DIRECTION_WORDS`, whole words,
  case-insensitive; ``snake_case`` and ``CamelCase`` names are split into words).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable

from tqdm.auto import tqdm

from xclip.data import VideoDataset
from xclip.data.dataset import BadSample
from xclip.data.loader import BadVideosError
from xclip.data.scan import scan_dataset
from xclip.errors import InputError

from . import distributed as D
from .config import RunConfig
from .logs import RUN_LOGGER

log = logging.getLogger(RUN_LOGGER)

__all__ = [
    "DIRECTION_WORDS",
    "check_before_training",
    "check_validation_headers",
    "directional_classes",
    "warn_direction_flip",
]

# Words whose meaning a horizontal flip reverses (left <-> right, clockwise <-> counter-).
DIRECTION_WORDS = frozenset(
    {
        "left",
        "right",
        "leftward",
        "leftwards",
        "rightward",
        "rightwards",
        "clockwise",
        "counterclockwise",
        "anticlockwise",
    }
)

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_WORD = re.compile(r"[A-Za-z]+")


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(_CAMEL.sub(" ", name))]


def directional_classes(class_names: Iterable[str]) -> list[str]:
    """The class names that contain a direction word (whole words, case-insensitive)."""
    return [n for n in class_names if DIRECTION_WORDS.intersection(_words(str(n)))]


def warn_direction_flip(flip_p: float, class_names: Iterable[str]) -> bool:
    """Log one warning when flipping is on and classes name a direction; returns whether it did."""
    if not flip_p:
        return False
    found = directional_classes(class_names)
    if not found:
        return False
    shown = ", ".join(repr(n) for n in found[:3]) + (
        f" and {len(found) - 3} more" if len(found) > 3 else ""
    )
    log.warning(
        "aug.flip=%g mirrors training clips left-right, but %d class name(s) name a direction "
        "(%s): a flipped clip of such a class shows another one; set aug.flip=0 for this dataset "
        "(see 'Custom datasets' in docs/data.md)",
        flip_p,
        len(found),
        shown,
    )
    return True


def check_validation_headers(cfg: RunConfig, info: D.DistInfo) -> list[BadSample]:
    """Open the header of every video of ``data.val_file`` (rank 0, threaded; the result is
    shared with every rank); raise :class:`BadVideosError` for unreadable ones unless
    ``data.skip_bad``, in which case they are logged and returned."""
    found: list[BadSample] | None = None
    total = 0
    failure: tuple[bool, str] | None = None
    if info.is_main:
        try:
            found, total = _scan_headers(cfg)
        except Exception as e:
            # shared so that the other ranks stop too instead of waiting for rank 0
            D.broadcast_object((None, 0, (isinstance(e, InputError | OSError), str(e))))
            raise
    found, total, failure = D.broadcast_object((found, total, failure))
    if failure is not None:
        user_error, message = failure
        raise InputError(message) if user_error else RuntimeError(f"rank 0 failed: {message}")
    if found and not cfg.data.skip_bad:
        raise BadVideosError(found, total, "validation")
    for b in found:
        log.warning("validation video %s is unreadable (%s): it will be skipped", b.path, b.reason)
    return found


def _scan_headers(cfg: RunConfig) -> tuple[list[BadSample], int]:
    ds = VideoDataset(
        cfg.data.val_file,
        cfg.data.root or None,
        cfg.data.label_list,
        mode="test",
        backend=cfg.data.backend,
        check_files=cfg.data.check_files,
    )
    total = len(ds)
    threads = max(1, min(16, cfg.data.workers or (os.cpu_count() or 1)))
    bar = None
    if cfg.output.progress:
        bar = tqdm(
            total=total, desc="checking validation videos", unit="video",
            dynamic_ncols=True, file=sys.stderr, leave=False,
        )  # fmt: skip
    try:
        res = scan_dataset(ds, "header", workers=threads, on_progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    log.info(
        "preflight: opened the headers of %d validation videos in %.1f s, %d unreadable",
        total, res.seconds, len(res.bad),
    )  # fmt: skip
    return [BadSample(p.index, ds.storage.describe(p.path), p.error) for p in res.bad], total


def check_before_training(cfg: RunConfig, info: D.DistInfo, class_names: list[str]) -> None:
    """Everything the run can check before its first step (see the module doc)."""
    if info.is_main:
        warn_direction_flip(cfg.aug.flip, class_names)
    if cfg.data.preflight and (cfg.test.eval_every or cfg.test.final_eval) and cfg.data.val_file:
        check_validation_headers(cfg, info)
