"""Reading and writing weights safely: no code is unpickled, writes are atomic, loads are strict."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import atomic_write
from .errors import InputError

NATIVE_FORMAT = "xclip"
NATIVE_FORMAT_VERSION = 1
NATIVE_WEIGHTS = "model.safetensors"
CONFIG_FILE = "config.json"


class CheckpointError(InputError):
    """A checkpoint that cannot be read or does not fit the model; the message says why and what to do."""


def _stub_class(module: str, name: str) -> tuple[type, str]:
    # A stand-in for classes pickled inside training checkpoints (e.g. the original's yacs CfgNode
    # under "config"), as a (callable, "module.Name") entry for torch's weights_only allowlist.
    # The weights_only unpickler only fills exact dict/OrderedDict/Counter objects (SETITEMS) and
    # only restores instance state (BUILD) into allowlisted types; a dict subclass of our own would
    # be refused. So the foreign name is mapped to OrderedDict itself: a pickled CfgNode (NEWOBJ,
    # SETITEMS, BUILD) comes back as a nested, inert OrderedDict (its yacs flags as attributes),
    # and nothing foreign is imported or executed.
    return (OrderedDict, f"{module}.{name}")


# Classes known to appear in the original X-CLIP training checkpoints next to the weights.
_KNOWN_FOREIGN = [("yacs.config", "CfgNode")]


def _first_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(1)


def read_torch_file(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` with clear errors for non-checkpoints.

    The original X-CLIP ``.pth`` files also pickle a yacs ``CfgNode`` (the run's config); it is
    read into an inert (nested) ``OrderedDict`` instead of importing yacs.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            raise CheckpointError(
                f"{path} is a TorchScript archive (e.g. an OpenAI CLIP .pt file). Loading it runs "
                f"code, so it is not done implicitly; convert it once with "
                f"`xclip-video convert-openai {path} OUT.safetensors` and load the result"
            )
    elif _first_byte(path) != b"\x80":
        # torch.save writes a zip archive (torch >= 1.6) or a binary pickle (legacy, starts with
        # the PROTO opcode); anything else (text, HTML error pages, ...) is not a checkpoint.
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle). Expected a "
            f".pth/.pt/.bin state dict, a .safetensors file, or a model directory with config.json"
        )
    stubs = [_stub_class(m, n) for m, n in _KNOWN_FOREIGN]
    try:
        with torch.serialization.safe_globals(stubs):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e).splitlines()[0] if str(e) else repr(e)
        raise CheckpointError(
            f"{path} could not be read safely (weights_only=True): {msg}. If this is a checkpoint "
            f"from a source you trust that pickles custom classes, re-save its state_dict with "
            f"torch.save(ckpt['model'], 'weights.pth') or as safetensors"
        ) from None
    # The weights_only unpickler lets low-level errors of a corrupt pickle escape unwrapped
    # (e.g. IndexError from its mark stack, struct.error on a short read).
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        IndexError,
        KeyError,
        TypeError,
        AttributeError,
        struct.error,
    ) as e:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). Expected a .pth/.pt/.bin state dict, "
            f"a .safetensors file, or a model directory with config.json"
        ) from None


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises its own SafetensorError / OSError
        raise CheckpointError(f"{path} is not a valid safetensors file: {e}") from None


def extract_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The weights inside a loaded checkpoint object: ``ckpt["model"]``, ``["state_dict"]`` or itself."""
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict", "module"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(
                isinstance(v, torch.Tensor) for v in inner.values()
            ):
                obj = inner
                break
        sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if sd:
            if all(k.startswith("module.") for k in sd):  # saved from a DDP-wrapped model
                sd = {k[len("module.") :]: v for k, v in sd.items()}
            return sd
    raise CheckpointError(
        f"{source} holds no tensors (got {type(obj).__name__}); expected a state dict or a "
        f"training checkpoint with a 'model' entry"
    )


def load_state_dict_strict(model: nn.Module, sd: Mapping[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(sd, strict=True)`` with an error that names every mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(sd))
        if sd[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        lines = [f"{source} does not fit this model architecture:"]

        def show(title: str, items: list[str]) -> None:
            if items:
                head = ", ".join(items[:8]) + (
                    f", ... ({len(items)} in all)" if len(items) > 8 else ""
                )
                lines.append(f"  {title}: {head}")

        show("shape mismatches", shapes)
        show("missing keys", missing)
        show("unexpected keys", unexpected)
        lines.append(
            "  Load it with xclip.load_model(path), which infers the architecture, or pick the "
            "matching architecture name (xclip.list_models())."
        )
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(sd, strict=True)


def save_safetensors(sd: Mapping[str, torch.Tensor], path: str | Path, metadata=None) -> None:
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def save_json(obj: Any, path: str | Path) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")

    atomic_write(Path(path), write)


def read_json(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None
