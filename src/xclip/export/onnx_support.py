"""ONNX Runtime as an optional dependency: the one-line message when it is missing."""

from __future__ import annotations

import importlib.util

from xclip.errors import InputError

__all__ = ["ONNX_EXTRA", "require_onnxruntime"]

ONNX_EXTRA = "pip install 'xclip[onnx]'"


def require_onnxruntime(what: str, modules: tuple[str, ...] = ()) -> None:
    """Raise ``InputError`` naming the install command unless ``onnxruntime`` (and ``modules``)
    can be imported."""
    missing = [m for m in ("onnxruntime", *modules) if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"{what} needs {', '.join(missing)}: {ONNX_EXTRA}")
