"""Numeric precision by name: ``fp32``, ``bf16``, ``fp16`` (``auto`` picks one for the device).

Low precision means ``torch.autocast`` around fp32 weights, in training, evaluation, inference
and the benchmarks alike.
"""

from __future__ import annotations

import contextlib

import torch

from xclip.errors import InputError

__all__ = ["PRECISIONS", "autocast", "resolve_precision"]

PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on a GPU that supports it, else fp16 on a GPU, fp32 on CPU; a name is
    checked and returned as is."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision not in PRECISIONS:
        raise InputError(
            f"precision must be auto or one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    return precision


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """A no-op for fp32, else ``torch.autocast`` to the named dtype on ``device``'s type."""
    dtype = PRECISIONS[precision]
    if dtype is torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
