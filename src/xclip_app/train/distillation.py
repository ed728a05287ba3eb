"""Distillation from the frozen source model (FROSTER, Huang et al., ICLR 2024): a loss that keeps
the trained model's features near those of the CLIP it started from, so fine-tuning on a closed
set of classes does not drift away from what recognises every other class.

The teacher is a frozen copy of the starting weights as a plain image CLIP on video: frame
features averaged over time (no cross-frame messages, no MIT, no prompts). The loss is
``weight * (1 - cos(student video embedding, teacher video embedding))``, averaged over the batch,
plus the same term for the class-text features when the text tower is trained (with a frozen text
tower they equal the teacher's and the term is zero, so it is skipped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import xclip
from xclip.inference.labels import ensemble_text_features

__all__ = ["FeatureDistillation", "source_teacher"]


def source_teacher(model: xclip.XCLIP) -> xclip.XCLIP:
    """A frozen copy of ``model``'s CLIP towers (taken now, so call it before training) as the
    CLIP-mean video model, in eval mode, without gradients."""
    cfg = model.cfg.replace(cross_frame=False, use_mit=False, use_prompts=False, drop_path_rate=0.0)
    teacher = xclip.XCLIP(cfg).set_attn_impl(model.attn_impl)
    own = teacher.state_dict()
    sd = model.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:  # pragma: no cover - the CLIP-mean model's keys are a subset of every X-CLIP's
        raise RuntimeError(f"the source teacher lacks {missing[:5]}")
    teacher.load_state_dict({k: sd[k] for k in own})
    teacher.to(model.device).eval().requires_grad_(False)
    return teacher


class FeatureDistillation(nn.Module):
    """``loss(clips, video_embeds, text_features=None, tokens=None)`` -> the weighted feature
    distance to the frozen teacher (a scalar tensor with gradients into the student's features)."""

    def __init__(self, model: xclip.XCLIP, weight: float) -> None:
        super().__init__()
        self.teacher = source_teacher(model)
        self.weight = weight
        self._text_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def train(self, mode: bool = True) -> FeatureDistillation:  # the teacher stays in eval mode
        return self

    @torch.no_grad()
    def teacher_video(self, clips: torch.Tensor) -> torch.Tensor:
        return self.teacher.encode_video(clips).embeds.float()

    @torch.no_grad()
    def teacher_text(self, tokens: torch.Tensor, num_templates: int = 1) -> torch.Tensor:
        cached = self._text_cache
        if cached is None or not torch.equal(cached[0], tokens):
            feats = ensemble_text_features(self.teacher.encode_text(tokens).float(), num_templates)
            cached = (tokens.clone(), feats)
            self._text_cache = cached
        return cached[1]

    def loss(
        self,
        clips: torch.Tensor,
        video_embeds: torch.Tensor,
        text_features: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
        num_templates: int = 1,
    ) -> torch.Tensor:
        target = self.teacher_video(clips)
        total = 1.0 - F.cosine_similarity(video_embeds.float(), target, dim=-1).mean()
        if text_features is not None and tokens is not None:
            t = self.teacher_text(tokens, num_templates)
            total = total + 1.0 - F.cosine_similarity(text_features.float(), t, dim=-1).mean()
        return self.weight * total
