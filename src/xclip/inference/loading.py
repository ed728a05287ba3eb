"""The model inference runs: resolved from a model object, a name or a path, and identified.

A source is an :class:`~xclip.XCLIP`, an architecture name (random weights, for trying the
pipeline), ``"arch.tag"`` released weights (downloaded on first use), a checkpoint path or an
exported folder (:mod:`xclip.export`, run on ONNX Runtime or as ``torch.export`` programs). The
weights fingerprint ties an embedding index to the weights that made it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from xclip.errors import InputError

from ..checkpoint import CheckpointError
from ..config import list_models, registered_name
from ..export.folder import is_export_folder
from ..export.runtime import ExportedModel, load_exported
from ..factory import create_model, load_model
from ..fingerprint import weights_fingerprint
from ..model import XCLIP

logger = logging.getLogger(__name__)

__all__ = ["load_inference_model", "model_fingerprint", "model_info"]


def load_inference_model(
    source: XCLIP | ExportedModel | str | os.PathLike,
    *,
    num_frames: int | None = None,
    image_size: int | None = None,
    interpolate: bool = False,
) -> XCLIP | ExportedModel:
    """A model for inference from an :class:`XCLIP`, an architecture name (random weights, for
    trying the pipeline), ``"arch.tag"`` released weights (downloaded on first use) or a path.

    The frame count and image size come from the checkpoint. ``num_frames``/``image_size`` that
    differ from it raise ``ValueError`` unless ``interpolate=True``, which adapts the position
    embeddings (accuracy changes until fine-tuned).

    An exported folder (written by :func:`xclip.export_model`) gives an
    :class:`~xclip.export.ExportedModel` with the same inference interface.
    """
    if isinstance(source, XCLIP | ExportedModel):
        model = source
    elif is_export_folder(source):
        model = load_exported(source)
    else:
        s = os.fspath(source)
        if s in list_models():
            logger.warning("%s: random weights (an architecture name, not a checkpoint)", s)
            model = create_model(s)
        else:
            p = Path(s)
            if not p.exists():
                arch = s.split(".", 1)[0]
                if "." in p.name and "/" not in s and arch in list_models():
                    model = load_model(s)  # released weights, downloaded and cached
                else:
                    raise CheckpointError(
                        f"model {s!r} is not a file or folder, an architecture name or an "
                        f"ARCH.TAG weights name; give a checkpoint path, e.g. a folder written by "
                        f"xclip.save_model, or a released weights name such as "
                        f"xclip_b16_32f.zero_shot (see `xclip-video pretrained`)"
                    )
            else:
                model = load_model(p)
    cfg = model.cfg
    wants = {"num_frames": num_frames, "image_size": image_size}
    diff = {k: v for k, v in wants.items() if v is not None and v != getattr(cfg, k)}
    if diff:
        what = ", ".join(f"{k}={v} (the model has {getattr(cfg, k)})" for k, v in diff.items())
        if isinstance(model, ExportedModel):
            raise InputError(
                f"the exported model takes {cfg.num_frames} frames at {cfg.image_size}px but "
                f"{what} was requested; leave the option out, or export the model again from a "
                f"checkpoint loaded with those values"
            )
        if not interpolate or isinstance(source, XCLIP):
            raise InputError(
                f"the model was trained for {cfg.num_frames} frames at {cfg.image_size}px but "
                f"{what} was requested; leave the option out (the model's values are used "
                f"automatically)"
                + (
                    ""
                    if isinstance(source, XCLIP)
                    else " or add --interpolate to adapt the "
                    "checkpoint (accuracy changes until fine-tuned)"
                )
            )
        s = os.fspath(source)
        model = create_model(s, **diff) if s in list_models() else load_model(s, **diff)
    return model


def model_fingerprint(model: XCLIP | ExportedModel) -> str:
    """``v2:`` + 16 hex digits that tell whether two models compute with the same weights: every
    parameter and buffer (names, dtypes, shapes, bytes), hashed once per state of the weights
    (:func:`xclip.fingerprint.weights_fingerprint`). An exported model carries the fingerprint
    recorded at export: its source's for float32 graphs, another for int8 ones."""
    if isinstance(model, ExportedModel):
        return model.fingerprint
    return weights_fingerprint(model)


def model_info(model: XCLIP | ExportedModel, source: str) -> dict[str, Any]:
    """What an index records about the model that made it: ``source`` (the name or path to reload
    it by), architecture, weights fingerprint, config and preprocessing."""
    return {
        "source": source,
        "architecture": registered_name(model.cfg),
        "fingerprint": model_fingerprint(model),
        "config": model.cfg.to_dict(),
        "preprocess": model.preprocess.to_dict(),
    }
