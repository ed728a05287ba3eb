"""Training checkpoints that survive crashes, and ``--resume auto``.

A checkpoint is a directory ``RUN/checkpoints/epoch_EEE[_iter_IIIIII]/`` holding

* ``model.safetensors`` + ``config.json``: the X-CLIP weights as :func:`xclip.save_model` writes
  them, so ``xclip.load_model(ckpt_dir)`` (and every ``xclip-video`` command) reads a checkpoint
  directly; ``head.safetensors`` for the linear-head ablation;
* ``train_state.pt``: optimizer, scheduler, grad scaler, RNG states of every rank, epoch,
  iteration and best accuracy - tensors, numbers, strings, lists and dicts only, so it loads with
  ``torch.load(weights_only=True)``;
* ``meta.json``: the same position in readable form.

* ``meta.json``: the same position in readable form, the run's identity (resolved config, list
  fingerprints, number of processes: what ``--resume`` compares) and how many rows of
  ``metrics.jsonl`` the run had written (a resume drops the rows after them).

The directory is filled under a temporary name and renamed into place by
:func:`xclip.atomic.atomic_dir`, so a directory with a final name is always complete: ``kill -9``
in the middle of a save leaves the previous checkpoints untouched and at most a
``.tmp-<name>-<pid>-*`` folder, removed by the next save or resume. ``keep_last`` training
checkpoints are kept (an older one is renamed to ``.del-*`` before it is deleted, so a half-deleted
folder never carries a checkpoint's name); ``best/`` holds the weights of the best single-view
accuracy, replaced as a unit.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import xclip
from xclip.atomic import atomic_dir, recover_dir
from xclip.checkpoint import CheckpointError, read_torch_file, save_json, save_safetensors
from xclip.errors import InputError
from xclip.ownership import is_owned, remove_owned, require_replaceable

log = logging.getLogger(__name__)

__all__ = [
    "CKPT_DIR",
    "Position",
    "capture_rng",
    "find_latest",
    "list_checkpoints",
    "load_train_state",
    "read_meta",
    "recover_checkpoints",
    "resolve_resume",
    "restore_rng",
    "write_checkpoint",
    "write_weights",
]

CKPT_DIR = "checkpoints"
TRAIN_STATE = "train_state.pt"
HEAD_WEIGHTS = "head.safetensors"
_NAME = re.compile(r"^epoch_(\d+)(?:_iter_(\d+))?$")
FORMAT = "xclip-train-state"
FORMAT_VERSION = 1  # version 1 states may lack "pending" and "epoch_sums" (both optional)


@dataclass(frozen=True, order=True)
class Position:
    """Where training continues: ``epoch`` (0-based) and the loader ``iteration`` inside it."""

    epoch: int
    iteration: int = 0

    @property
    def name(self) -> str:
        # the name counts completed epochs: "epoch_003" = after 3 epochs
        return f"epoch_{self.epoch:03d}" + (f"_iter_{self.iteration:06d}" if self.iteration else "")

    @classmethod
    def parse(cls, name: str) -> Position | None:
        m = _NAME.match(name)
        if not m:
            return None
        return cls(int(m.group(1)), int(m.group(2) or 0))


# --- RNG ------------------------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    """This process's RNG states as tensors/lists (weights_only-loadable)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# --- writing --------------------------------------------------------------------------------------


def _save_weights(classifier, out: Path) -> None:
    xclip.save_model(classifier.model, out)
    if classifier.head is not None:
        save_safetensors(
            classifier.head.state_dict(), out / HEAD_WEIGHTS, metadata={"format": "pt"}
        )


def write_checkpoint(
    run_dir: Path,
    classifier,
    position: Position,
    train_state: dict[str, Any],
    meta: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write ``RUN/checkpoints/<position>/`` atomically and prune to ``keep_last``."""
    ckpt_root = run_dir / CKPT_DIR
    final = ckpt_root / position.name

    def fill(tmp: Path) -> None:
        _save_weights(classifier, tmp)
        state = {"format": FORMAT, "format_version": FORMAT_VERSION, **train_state}
        torch.save(state, tmp / TRAIN_STATE)
        save_json(
            {**meta, "epoch": position.epoch, "iteration": position.iteration}, tmp / "meta.json"
        )

    atomic_dir(final, fill, overwrite=True, kind="checkpoint")  # same position = same state
    recover_checkpoints(run_dir)
    ckpts = list_checkpoints(run_dir)
    for old in ckpts[:-keep_last] if keep_last > 0 else []:
        require_replaceable(old, "checkpoint", flag="keep_last")  # a checkpoint a user edited stays
        doomed = old.with_name(f".del-{old.name}-{os.getpid()}")
        os.replace(old, doomed)  # out of the checkpoint names first, then deleted
        remove_owned(doomed, "checkpoint")
    return final


def recover_checkpoints(run_dir: Path) -> None:
    """Clean ``RUN/checkpoints/`` after crashes: put back a checkpoint left aside in the middle of
    a replace, remove temporary folders of dead writers and half-deleted old checkpoints."""
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return
    names = set()
    for p in root.iterdir():
        kind, _, rest = p.name.partition("-")
        if p.name.startswith((".xclip-tmp-", ".xclip-old-")):
            names.add(p.name[len(".xclip-tmp-") :].split("-", 1)[0])  # names hold no "-"
        elif kind == ".del" and is_owned(p, "checkpoint"):
            remove_owned(p, "checkpoint")
    for name in names:
        recover_dir(root / name)


def write_weights(classifier, out: Path, meta: dict[str, Any]) -> Path:
    """Weights only (``best/``, ``final/``), atomically."""

    def fill(tmp: Path) -> None:
        _save_weights(classifier, tmp)
        save_json(meta, tmp / "meta.json")

    atomic_dir(out, fill, overwrite=True, kind="weights")  # replaced as a unit
    return out


# --- finding and reading --------------------------------------------------------------------------


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete training checkpoints of a run, oldest first."""
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        pos = Position.parse(d.name)
        if pos is not None and d.is_dir() and (d / TRAIN_STATE).is_file():
            found.append((pos, d))
    return [d for _, d in sorted(found)]


def find_latest(run_dir: Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    """``None`` -> no resume; ``"auto"`` -> the latest checkpoint of ``run_dir`` (or None);
    a path -> that checkpoint directory (or a run folder: its latest)."""
    if not resume:
        return None
    if resume == "auto":
        return find_latest(run_dir)
    p = Path(resume)
    if (p / TRAIN_STATE).is_file():
        return p
    if p.is_dir() and (latest := find_latest(p)) is not None:
        return latest
    raise InputError(
        f"--resume {resume}: not a training checkpoint directory (no {TRAIN_STATE}) nor a run "
        f"folder with checkpoints; use --resume auto to continue the run in output.dir"
    )


def load_train_state(ckpt: Path) -> dict[str, Any]:
    state = read_torch_file(Path(ckpt) / TRAIN_STATE)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{ckpt / TRAIN_STATE} is not an xclip training state")
    if state.get("format_version", 1) > FORMAT_VERSION:
        raise CheckpointError(f"{ckpt} was written by a newer xclip; upgrade xclip")
    return state


def read_meta(ckpt: Path) -> dict[str, Any]:
    p = Path(ckpt) / "meta.json"
    return json.loads(p.read_text()) if p.is_file() else {}
