"""The original X-CLIP layout (``microsoft/VideoX``): architecture inference and adaptation.

Our parameter names *are* the original ones, so an original ``ckpt["model"]`` needs no renaming;
this module infers the architecture from tensor shapes (as the original ``build_model`` does) and
adapts a checkpoint to another frame count or image size on explicit request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from xclip.errors import InputError

from ..config import XCLIPConfig

StateDict = Mapping[str, torch.Tensor]


def _count(sd: StateDict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.fullmatch(k))})


def infer_config(sd: StateDict, **overrides) -> XCLIPConfig:
    """Infer an :class:`XCLIPConfig` from an original-layout state dict.

    Widths, depths, patch size, image size, frames and the presence of the X-CLIP modules come from
    the shapes; head counts follow the original rule ``width // 64`` unless given in ``overrides``.
    """
    required = (
        "visual.conv1.weight",
        "visual.positional_embedding",
        "text_projection",
        "ln_final.weight",
    )
    missing = [k for k in required if k not in sd]
    if missing:
        raise InputError(
            f"not an X-CLIP/CLIP state dict in the original layout: missing {missing} "
            f"(found e.g. {sorted(sd)[:5]})"
        )
    conv = sd["visual.conv1.weight"]
    vision_width, patch = conv.shape[0], conv.shape[-1]
    grid = math.isqrt(sd["visual.positional_embedding"].shape[0] - 1)
    cfg = dict(
        embed_dim=sd["text_projection"].shape[1],
        image_size=grid * patch,
        patch_size=patch,
        vision_width=vision_width,
        vision_layers=_count(sd, r"visual\.transformer\.resblocks\.(\d+)\.attn\.in_proj_weight"),
        context_length=sd["positional_embedding"].shape[0],
        vocab_size=sd["token_embedding.weight"].shape[0],
        text_width=sd["ln_final.weight"].shape[0],
        text_layers=_count(sd, r"transformer\.resblocks\.(\d+)\.attn\.in_proj_weight"),
        cross_frame="visual.transformer.resblocks.0.message_fc.weight" in sd,
        use_mit="mit.positional_embedding" in sd,
        use_prompts="prompts_visual_proj" in sd,
    )
    if cfg["use_mit"]:
        cfg["num_frames"] = sd["mit.positional_embedding"].shape[1]
        cfg["mit_layers"] = _count(sd, r"mit\.resblocks\.(\d+)\.attn\.in_proj_weight")
    if cfg["use_prompts"]:
        cfg["prompt_layers"] = _count(sd, r"prompts_generator\.decoder\.(\d+)\.norm1\.weight")
    cfg.update(overrides)
    return XCLIPConfig(**cfg)


def interpolate_frames(sd: dict[str, torch.Tensor], num_frames: int) -> dict[str, torch.Tensor]:
    """Resample ``mit.positional_embedding`` [1, T, C] to ``num_frames`` (linear, align_corners).

    The only frame-count-dependent weight; an explicit, opt-in adaptation (results will differ from
    the checkpoint's reported accuracy until fine-tuned).
    """
    key = "mit.positional_embedding"
    if key not in sd or sd[key].shape[1] == num_frames:
        return sd
    pos = sd[key]  # [1, T, C]
    new = F.interpolate(
        pos.float().transpose(1, 2), size=num_frames, mode="linear", align_corners=True
    )
    sd = dict(sd)
    sd[key] = new.transpose(1, 2).to(pos.dtype).contiguous()
    return sd


def interpolate_image_size(
    sd: dict[str, torch.Tensor], image_size: int, patch_size: int
) -> dict[str, torch.Tensor]:
    """Resample ``visual.positional_embedding`` [1+g*g, D] to a new grid (bicubic), opt-in."""
    key = "visual.positional_embedding"
    pos = sd[key]
    old_grid = math.isqrt(pos.shape[0] - 1)
    new_grid = image_size // patch_size
    if old_grid == new_grid:
        return sd
    cls, grid = pos[:1], pos[1:]  # [1, D], [g*g, D]
    grid = grid.float().reshape(1, old_grid, old_grid, -1).permute(0, 3, 1, 2)  # [1, D, g, g]
    grid = F.interpolate(grid, size=(new_grid, new_grid), mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(new_grid * new_grid, -1).to(pos.dtype)
    sd = dict(sd)
    sd[key] = torch.cat([cls, grid], dim=0).contiguous()
    return sd
