"""The transformers side of the "text features cached" timing: ``XCLIPModel.forward`` with the
projected class-text embeddings computed once.

``transformers.XCLIPModel`` has no entry point that takes precomputed text features: its
``forward`` always runs the text model. To time the cached case on both sides alike,
:func:`hf_forward_cached` replays the body of ``XCLIPModel.forward`` (transformers
``models/x_clip/modeling_x_clip.py``, checked against 5.24) minus the text model, with the
model's own modules: ``vision_model`` -> ``visual_projection`` -> ``mit`` for the video embedding;
``prompts_visual_layernorm`` and ``prompts_visual_projection`` on the patch tokens, averaged over
frames; ``prompts_generator`` on the text embeddings; L2 normalisation and ``logit_scale.exp()``.
If transformers changes that forward, this copy must follow, or the cached ratios stop comparing
like with like.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import XCLIPModel

__all__ = ["hf_forward_cached"]


def hf_forward_cached(
    hf: XCLIPModel, pixel_values: torch.Tensor, text_embeds: torch.Tensor
) -> torch.Tensor:
    """Video-text logits ``[B, K]`` of ``transformers.XCLIPModel`` ``hf`` for ``pixel_values``
    ``[B, T, 3, H, W]`` and the projected text embeddings ``text_embeds`` ``[K, C]``
    (``hf.get_text_features(...).pooler_output``): the same modules and operations as its
    ``forward`` after the text model, so "cached" costs the same on both sides."""
    b, t, c, h, w = pixel_values.shape
    vision = hf.vision_model(pixel_values=pixel_values.reshape(-1, c, h, w))  # on [B*T, 3, H, W]
    video_embeds = hf.visual_projection(vision[1])  # [B*T, C]
    video_embeds = hf.mit(video_embeds.view(b, t, -1))[1]  # [B, C]
    img = hf.prompts_visual_layernorm(vision[0][:, 1:, :])  # patch tokens [B*T, L, D]
    img = img @ hf.prompts_visual_projection  # [B*T, L, C]
    img = img.view(b, t, -1, video_embeds.shape[-1]).mean(dim=1)  # [B, L, C]
    text = text_embeds.unsqueeze(0).expand(b, -1, -1)  # [B, K, C]
    text = text + hf.prompts_generator(text, img)
    video_embeds = video_embeds / video_embeds.norm(p=2, dim=-1, keepdim=True)
    text = text / text.norm(p=2, dim=-1, keepdim=True)
    return torch.einsum("bd,bkd->bk", video_embeds, hf.logit_scale.exp() * text)
