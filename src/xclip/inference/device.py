"""The device inference runs on: ``cpu``, ``cuda``, ``cuda:1``, ... or the best one available."""

from __future__ import annotations

import torch

from xclip.errors import InputError

from .errors import one_line_error

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when available, else the CPU; a name or device is checked:
    ``ValueError`` for an invalid name, or for CUDA on a machine without it."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise InputError(f"invalid device {device!r}: {one_line_error(e)}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev
