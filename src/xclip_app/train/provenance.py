"""What an evaluation report records so that its number can be reproduced: fingerprints of the
weights, of the checkpoint files, of the lists and labels, and the views, sampling and seeds.

Every report of ``eval``, ``zeroshot``, ``fewshot`` and the training run's ``final_eval/``
carries these fields in its ``metrics.json`` (or results JSON):

- ``weights_sha256``: SHA-256 over every tensor of the evaluated model (names, dtypes, shapes,
  bytes), whatever file it came from; ``model_fingerprint``: the short fingerprint the
  inference indexes record (:func:`xclip.inference.model_fingerprint`);
- ``checkpoint``: the path or name given, and the SHA-256 of its weight files;
- ``list_sha256`` / ``labels_sha256``: SHA-256 of the list and label files as stored;
  ``entries_sha256``: of the parsed ``path label`` entries (also for in-memory entries);
- ``views`` (``CLIPSxCROPS``), ``view_mode``, ``sampling``, ``num_frames``, ``seed``, the
  number of videos evaluated and skipped.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

import xclip
from xclip.checkpoint import NATIVE_WEIGHTS
from xclip.inference import model_fingerprint

from .checkpointing import HEAD_WEIGHTS

__all__ = [
    "checkpoint_fingerprint",
    "dataset_fingerprint",
    "file_sha256",
    "model_provenance",
    "weights_sha256",
]

_BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike | None) -> str | None:
    """SHA-256 of a file's bytes (None when ``path`` is None or not a file)."""
    if path is None or not Path(path).is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def weights_sha256(module: torch.nn.Module) -> str:
    """SHA-256 over every tensor of ``module.state_dict()``: names, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_provenance(classifier: torch.nn.Module) -> dict[str, Any]:
    """``weights_sha256`` of the whole classifier (and ``model_fingerprint`` of its X-CLIP)."""
    out: dict[str, Any] = {"weights_sha256": weights_sha256(classifier)}
    model = getattr(classifier, "model", classifier)
    if isinstance(model, xclip.XCLIP):
        out["model_fingerprint"] = model_fingerprint(model)
    return out


def checkpoint_fingerprint(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint as given and the SHA-256 of its weight files (a folder's
    ``model.safetensors`` and ``head.safetensors``, or the file itself; none for ``ARCH.TAG``)."""
    p = Path(checkpoint)
    files: dict[str, str] = {}
    if p.is_dir():
        for name in (NATIVE_WEIGHTS, HEAD_WEIGHTS):
            digest = file_sha256(p / name)
            if digest is not None:
                files[name] = digest
    elif p.is_file():
        files[p.name] = file_sha256(p) or ""
    return {"checkpoint": os.fspath(checkpoint), "checkpoint_sha256": files}


def dataset_fingerprint(dataset: Any) -> dict[str, Any]:
    """The list and labels of a :class:`~xclip.data.VideoDataset` (files and parsed entries)
    and how its videos are sampled and viewed."""
    entries = getattr(dataset, "entries", [])
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.path} {e.label}\n".encode())
    num_clips = getattr(dataset, "num_clips", 1)
    num_crops = getattr(dataset, "num_crops", 1)
    list_file = getattr(dataset, "list_file", None)
    labels_file = getattr(dataset, "labels_file", None)
    storage = getattr(dataset, "storage", None)
    root = getattr(storage, "root", None) or getattr(storage, "tar_path", None)
    return {
        "list_file": list_file,
        "list_sha256": file_sha256(list_file),
        "labels_file": labels_file,
        "labels_sha256": file_sha256(labels_file),
        "entries_sha256": h.hexdigest(),
        "root": root,
        "views": f"{num_clips}x{num_crops}",
        "view_mode": getattr(dataset, "view_mode", None),
        "sampling": getattr(dataset, "sampling", None),
        "num_frames": getattr(dataset, "num_frames", None),
        "seed": getattr(dataset, "seed", None),
    }
