"""The weights fingerprint: a short name for "these exact weights, at this precision".

It keys what must not mix results of different weights: the rows of a resumed Parquet job, an
embedding index against the model that searches it, an exported folder against its source.

``v2:`` + 16 hex digits of a SHA-256 over every parameter and buffer of the model (name, dtype,
shape and bytes, in name order). An exported folder's fingerprint is its source's when its graphs
hold the same float32 weights, and a different one derived from the source's and the
quantisation (``int8-dynamic``) when they do not: rows of an int8 export never pass for rows of
its fp32 source.

Fingerprints written before ``v2`` (16 hex digits, no prefix) hashed only 4 tensors: two models
that differ in every block shared one. :func:`old_fingerprint_problem` recognises them and says
what to redo.
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import torch
from torch import nn

__all__ = [
    "FINGERPRINT_VERSION",
    "export_fingerprint",
    "hash_tensors",
    "is_current_fingerprint",
    "old_fingerprint_problem",
    "weights_fingerprint",
]

FINGERPRINT_VERSION = "v2"
_PREFIX = FINGERPRINT_VERSION + ":"

# module -> (the state key it was computed for, fingerprint); weak, so a model is not kept alive
_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, str]] = weakref.WeakKeyDictionary()


def _tensors(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    # parameters and buffers (persistent or not), each shared tensor once, in name order so that
    # the order modules were registered in does not matter
    named = dict(module.named_parameters())
    named.update(module.named_buffers())
    return sorted(named.items())


def _state_key(tensors: list[tuple[str, torch.Tensor]]) -> tuple | None:
    # What can change a fingerprint without creating a new module: an in-place write (load_state_dict,
    # an optimizer step, `with no_grad(): p.add_(...)`) bumps the tensor's version counter;
    # `.to()`, `.half()`, `load_state_dict(assign=True)` or `p.data = t` give it new storage (a new
    # data_ptr) and maybe a new dtype, shape or device. Reading this key costs no bytes, so the
    # full hash runs once per model state instead of once per call. Not seen: writes that bypass
    # the version counter (`p.data.add_()`, a NumPy view of the storage), which the library never
    # makes; call `weights_fingerprint(model, cached=False)` after such code. Tensors made under
    # torch.inference_mode() have no version counter: no key, hashed on every call.
    if any(t.is_inference() for _, t in tensors):
        return None
    return tuple(
        (name, t.data_ptr(), t._version, t.dtype, tuple(t.shape), str(t.device))
        for name, t in tensors
    )


def hash_tensors(tensors: list[tuple[str, torch.Tensor]]) -> str:
    """The ``v2:`` fingerprint of named tensors: SHA-256 over each name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, t in tensors:
        t = t.detach()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        # the raw bytes of any dtype (bf16 has no NumPy type), one tensor at a time on the CPU
        h.update(t.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return _PREFIX + h.hexdigest()[:16]


def weights_fingerprint(module: nn.Module, *, cached: bool = True) -> str:
    """The ``v2:`` fingerprint of every parameter and buffer of ``module`` (see the module doc).

    Computed once per state of the weights: later calls compare a key of the tensors' storage
    addresses and version counters (no bytes read) and return the stored value while it holds.
    """
    tensors = _tensors(module)
    key = _state_key(tensors) if cached else None
    hit = _CACHE.get(module) if key is not None else None
    if hit is not None and hit[0] == key:
        return hit[1]
    fp = hash_tensors(tensors)
    if key is not None:
        _CACHE[module] = (key, fp)
    return fp


def export_fingerprint(source: str, quantization: str | None) -> str:
    """The fingerprint of an export of weights fingerprinted ``source``: ``source`` itself for
    float32 graphs (the same weights; ONNX and pt2 agree with eager within float rounding), a
    derived ``v2:`` fingerprint for quantised graphs (other weights, other results)."""
    if quantization is None:
        return source
    digest = hashlib.sha256(f"{source}\0quantization={quantization}".encode()).hexdigest()
    return _PREFIX + digest[:16]


def is_current_fingerprint(fp: Any) -> bool:
    """Whether ``fp`` is a fingerprint of this version (``v2:...``)."""
    return isinstance(fp, str) and fp.startswith(_PREFIX)


def old_fingerprint_problem(fp: Any, what: str, redo: str) -> str | None:
    """One line when ``fp``, the fingerprint recorded by ``what``, was written by an xclip before
    ``v2`` (it cannot be compared with a fingerprint of this version); ``None`` otherwise (no
    fingerprint recorded counts as nothing to compare). ``redo`` says what to do, e.g.
    ``"rebuild it with `xclip-video embed ... -o INDEX --overwrite`"``."""
    if fp is None or fp == "" or is_current_fingerprint(fp):
        return None
    return (
        f"{what} was written by an older xclip whose weights fingerprint ({fp}) covered only 4 "
        f"tensors and cannot be compared with this version's; {redo}"
    )
