"""Weight-space interpolation of a fine-tuned X-CLIP with the image CLIP it started from.

Open-VCLIP (Weng et al., ICML 2023) and WiSE-FT (Wortsman et al., CVPR 2022): fine-tuning on a
closed set of classes moves the weights away from the ones that recognise everything else; a
point on the straight line between the source and the fine-tuned weights keeps much of both. With
``alpha`` the weight of the fine-tuned model, each tensor the two share becomes
``(1 - alpha) * source + alpha * finetuned``; the modules X-CLIP adds to CLIP (cross-frame
message tokens, MIT, prompts: :data:`xclip.convert.clip.NEW_MODULE_PATTERN`) have no source and
keep their fine-tuned values. ``alpha = 1`` is the fine-tuned model, ``alpha = 0`` the source
CLIP's towers with the fine-tuned new modules.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch

from .convert.clip import init_from_clip, load_clip_weights
from .errors import InputError
from .model import XCLIP

__all__ = ["interpolate_models", "interpolate_state_dicts", "source_model"]


def interpolate_state_dicts(
    source: Mapping[str, torch.Tensor], finetuned: Mapping[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * source + alpha * finetuned`` for every floating-point tensor of
    ``finetuned`` that ``source`` has; the other tensors of ``finetuned`` unchanged.

    A tensor both have with different shapes is an :class:`~xclip.errors.InputError`."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be in [0, 1] (1 = the fine-tuned model), got {alpha}")
    out = {}
    for k, ft in finetuned.items():
        src = source.get(k)
        if src is None or not ft.is_floating_point():
            out[k] = ft.clone()
            continue
        if src.shape != ft.shape:
            raise InputError(
                f"{k}: the source weights have shape {tuple(src.shape)}, the fine-tuned "
                f"{tuple(ft.shape)}; interpolate with the CLIP the model was trained from"
            )
        out[k] = torch.lerp(src.to(ft.dtype).to(ft.device), ft, alpha)
    return out


def source_model(finetuned: XCLIP, clip_weights) -> XCLIP:
    """A copy of ``finetuned`` whose CLIP towers hold ``clip_weights`` (a file, an open_clip name
    or a state dict, as ``create_model(clip_weights=)`` takes) and whose new modules keep the
    fine-tuned values; a CLIP of another architecture is an :class:`~xclip.errors.InputError`."""
    model = copy.deepcopy(finetuned)
    init_from_clip(model, load_clip_weights(clip_weights))  # copies the CLIP tensors only
    return model


def interpolate_models(source: XCLIP, finetuned: XCLIP, alpha: float) -> XCLIP:
    """A new model with :func:`interpolate_state_dicts` of the two models' weights."""
    if source.cfg != finetuned.cfg:
        raise InputError("the source and fine-tuned models have different architectures")
    model = copy.deepcopy(finetuned)
    model.load_state_dict(
        interpolate_state_dicts(source.state_dict(), finetuned.state_dict(), alpha)
    )
    model.preprocess = finetuned.preprocess
    return model
