"""The run folder: what a training run writes there, and whether a new command may write there.

A run folder (``output.dir``) holds one run. Before anything is written, :func:`plan_run` looks at
it and decides, on rank 0 (the trainer broadcasts the decision to the other ranks):

* empty or absent: a fresh run;
* it holds a run (any of :data:`RUN_ENTRIES`) and neither ``--resume`` nor ``--overwrite`` was
  given: refused, one line naming both;
* ``--overwrite``: the whole folder is renamed to the first free sibling ``RUN.1``, ``RUN.2``, ...
  (printed; nothing is deleted) and the run starts in an empty ``RUN``;
* ``--resume auto`` / ``--resume CKPT``: continued from the checkpoint, but only when nothing that
  could change the results differs from the run's start (config keys, the *content* of the
  train/val/label lists, the number of processes); otherwise refused with the differences;
* a finished run (``summary.json``) with ``--resume auto``: nothing to do, nothing written.

What a run is compared on (its *identity*: resolved config, list fingerprints, world size) is
stored in every checkpoint's ``meta.json``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xclip import ownership
from xclip.atomic import fsync_dir, recover_dir
from xclip.errors import InputError

from . import checkpointing as C
from .config import RunConfig, config_differences, config_to_dict, load_config

log = logging.getLogger(__name__)

__all__ = [
    "RUN_ENTRIES",
    "RunFolderError",
    "RunPlan",
    "fingerprint",
    "identity_differences",
    "move_aside",
    "plan_run",
    "run_entries",
    "run_identity",
]

# What makes a folder hold a run: the files and folders only a training run writes there.
RUN_ENTRIES = ("config.yaml", "metrics.jsonl", "summary.json", C.CKPT_DIR, "best", "final_eval")
SUMMARY = "summary.json"
CONFIG = "config.yaml"
# The data files whose content a resumed run must share with its start.
LIST_KEYS = ("data.train_file", "data.val_file", "data.label_list")
START_OVER = "start over with --overwrite (the old run is kept as {aside}) or another --output"


class RunFolderError(InputError):
    """The run folder cannot be used as asked (it holds a run, or resuming would change it)."""


@dataclass
class RunPlan:
    """What the trainer does with the run folder (the same on every rank)."""

    checkpoint: Path | None = None  # continue from here; None = start at epoch 0
    finished: bool = False  # the run already finished: write nothing
    moved_to: Path | None = None  # --overwrite: where the previous run went
    resumed: bool = False  # a --resume continues (a resume row marks the metrics log)
    # metrics.jsonl rows the continued run keeps (those written before `checkpoint`); None = a
    # new log
    keep_rows: int | None = None
    write_config: bool = True  # config.yaml does not exist yet


def run_entries(run_dir: Path) -> list[str]:
    """The :data:`RUN_ENTRIES` present in ``run_dir`` (empty: no run there)."""
    return [n for n in RUN_ENTRIES if (Path(run_dir) / n).exists()]


def fingerprint(path: str | Path | None) -> str | None:
    """sha256 of a list file's bytes; of the sorted ``relative/path size`` lines for a folder (a
    class-folder dataset); None when unset or missing."""
    if not path:
        return None
    p = Path(path)
    h = hashlib.sha256()
    if p.is_file():
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    if p.is_dir():
        for dirpath, dirs, files in os.walk(p):
            dirs.sort()
            for name in sorted(files):
                f = Path(dirpath, name)
                h.update(f"{f.relative_to(p).as_posix()} {f.stat().st_size}\n".encode())
        return h.hexdigest()
    return None


def run_identity(cfg: RunConfig, world_size: int) -> dict[str, Any]:
    """What a resumed run must share with its start (stored in every checkpoint's meta.json)."""
    return {
        "config": config_to_dict(cfg),
        "fingerprints": {k: fingerprint(getattr(cfg.data, k.split(".", 1)[1])) for k in LIST_KEYS},
        "world_size": world_size,
    }


def identity_differences(old: dict[str, Any], new: dict[str, Any], cfg: RunConfig) -> list[str]:
    """``["train.lr: 0.002 -> 0.001", "data.train_file content: sha256 1a2b3c4d -> 5e6f7a8b",
    "processes: 1 -> 2"]``: what differs between a run's stored identity and this command's."""
    diffs = config_differences(old["config"], cfg) if "config" in old else []
    before, now = old.get("fingerprints") or {}, new["fingerprints"]
    for key in LIST_KEYS:
        if key in before and before[key] != now[key]:
            a, b = (v[:8] if v else "none" for v in (before[key], now[key]))
            diffs.append(f"{key} content: sha256 {a} -> {b}")
    if old.get("world_size") is not None and old["world_size"] != new["world_size"]:
        diffs.append(f"processes: {old['world_size']} -> {new['world_size']}")
    return diffs


def move_aside(run_dir: Path) -> Path:
    """Rename ``run_dir`` as a whole to the first free ``RUN.N`` sibling and return it
    (:func:`xclip.ownership.move_aside`: the old run is always at ``RUN`` or at ``RUN.N``)."""
    try:
        target = ownership.move_aside(run_dir)
    except InputError:
        raise RunFolderError(
            f"no free name next to {run_dir} to move the previous run to"
        ) from None
    fsync_dir(run_dir.parent)
    return target


def _inside(path: str | Path | None, folder: Path) -> bool:
    if not path:
        return False
    return Path(path).resolve().is_relative_to(folder.resolve())


def _stored_identity(ckpt: Path | None, run_dir: Path) -> dict[str, Any] | None:
    if ckpt is not None:
        meta = C.read_meta(ckpt)
        if "run" in meta:
            return meta["run"]
        cfg_file = ckpt.parent.parent / CONFIG  # a checkpoint written before identities
    else:
        cfg_file = run_dir / CONFIG
    if cfg_file.is_file():
        return {"config": config_to_dict(load_config(cfg_file, validate=False))}
    return None


def plan_run(
    run_dir: Path, cfg: RunConfig, world_size: int, resume: str | None, overwrite: bool
) -> RunPlan:
    """Decide what to do with ``run_dir`` (see the module docstring); raises
    :class:`RunFolderError` with one line naming the fix. Call on rank 0 only: ``--overwrite``
    renames the folder."""
    run_dir = Path(run_dir)
    if overwrite and resume == "auto":
        raise RunFolderError(
            f"--overwrite starts the run in {run_dir} over, --resume auto continues it: pass "
            "one of them"
        )
    if resume:  # put back what a crash in the middle of a swap left aside, remove dead temps
        recover_dir(run_dir / "best")
        C.recover_checkpoints(run_dir)
    present = run_entries(run_dir)
    plan = RunPlan()

    ckpt: Path | None = None
    if resume and resume != "auto":
        ckpt = C.resolve_resume(resume, run_dir)
        if _inside(ckpt, run_dir):
            if overwrite:
                raise RunFolderError(
                    f"--overwrite would move {ckpt}, the checkpoint --resume names, away with "
                    f"the previous run; continue it with --resume {resume} alone"
                )
            pos = C.Position.parse(ckpt.name)
            newer = [
                c for c in C.list_checkpoints(run_dir) if pos and C.Position.parse(c.name) > pos
            ]
            if newer:
                raise RunFolderError(
                    f"--resume {resume}: {run_dir} has newer checkpoints ({newer[-1].name}); "
                    "continue from the newest with --resume auto, or from this one in another "
                    f"folder: --output NEW --resume {resume}"
                )
    elif resume == "auto":
        ckpt = C.find_latest(run_dir)

    if present and not overwrite:
        if not resume:
            raise RunFolderError(
                f"{run_dir} already holds a training run ({', '.join(present)}); continue it "
                "with --resume auto, or " + START_OVER.format(aside=ownership.aside_name(run_dir))
            )
        if ckpt is not None and not _inside(ckpt, run_dir):
            raise RunFolderError(
                f"{run_dir} already holds another run ({', '.join(present)}); continue from "
                f"{ckpt} into a new folder with --output NEW --resume {resume}, or "
                + START_OVER.format(aside=ownership.aside_name(run_dir))
            )
    if present and overwrite:
        inputs = [
            f"{k}={v}"
            for k, v in (
                *((k, getattr(cfg.data, k.split(".", 1)[1])) for k in LIST_KEYS),
                ("data.root", cfg.data.root),
                ("model.clip_weights", cfg.model.clip_weights),
                ("model.init_from", cfg.model.init_from),
            )
            if _inside(v, run_dir)
        ]
        if inputs:
            raise RunFolderError(
                f"--overwrite would move {inputs[0]} away with the previous run in {run_dir}; "
                "move it out of the run folder first, or train into another --output"
            )

    continuing = resume is not None and (ckpt is not None or (present and not overwrite))
    if continuing:
        old = _stored_identity(ckpt, run_dir)
        if old is None:
            log.warning(
                "%s records no config: cannot check that the run is the same", ckpt or run_dir
            )
        else:
            diffs = identity_differences(old, run_identity(cfg, world_size), cfg)
            if diffs:
                raise RunFolderError(
                    f"cannot resume {ckpt or run_dir}: it was started with other settings "
                    f"({'; '.join(diffs)}); resume with the run's values (see its config.yaml), "
                    "or " + START_OVER.format(aside=ownership.aside_name(run_dir))
                )
    if present and overwrite:
        plan.moved_to = move_aside(run_dir)
        present = []
    if not continuing:
        return plan  # a fresh run (--resume auto in an empty folder starts from scratch)
    if present and (run_dir / SUMMARY).is_file():
        plan.finished = True
        return plan
    plan.checkpoint = ckpt
    plan.resumed = True
    plan.write_config = not (run_dir / CONFIG).exists()
    if ckpt is None:
        plan.keep_rows = 0  # the earlier attempt left no checkpoint: none of its rows stay
    elif _inside(ckpt, run_dir):
        rows = C.read_meta(ckpt).get("metrics_rows")
        plan.keep_rows = int(rows) if rows is not None else None
    return plan
