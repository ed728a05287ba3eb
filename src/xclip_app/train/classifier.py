"""What the trainer optimises: an X-CLIP scored against class texts, or (the paper's "w/o text"
ablation) a linear classifier on the video embedding.

:class:`TrainableClassifier` is the module handed to DDP. ``forward(video, text_features=...)`` uses
precomputed class-text features (text tower frozen); ``forward(video, tokens=...)`` runs the text
tower inside the forward pass, so its gradients flow (and are synchronised) when it is trained.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

import xclip
from xclip.checkpoint import read_safetensors
from xclip.errors import InputError
from xclip.inference.labels import ensemble_text_features, prompts

from .checkpointing import HEAD_WEIGHTS

log = logging.getLogger(__name__)

__all__ = ["TrainableClassifier", "build_classifier", "class_tokens", "load_classifier"]


def class_tokens(names: list[str], templates: list[str] | tuple[str, ...] = ()) -> torch.Tensor:
    """Token ids of the class texts: the names as they are (no ``templates``, the paper's way)
    or every (template, name), template-major (``data.templates``: a label-text ensemble)."""
    return xclip.tokenize(prompts(names, list(templates) or ["{}"], what="class name"))


class TrainableClassifier(nn.Module):
    """``model`` (X-CLIP) plus an optional linear ``head`` ``[C -> K]``.

    Parameter names are ``model.<original X-CLIP name>`` and ``head.{weight,bias}``; the
    original's freezing and param-group rules match substrings, so they apply unchanged.
    """

    def __init__(self, model: xclip.XCLIP, num_classes: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.head: nn.Linear | None = None
        if num_classes is not None:
            self.head = nn.Linear(model.cfg.embed_dim, num_classes)
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    @property
    def uses_text(self) -> bool:
        return self.head is None

    def forward(
        self,
        video: torch.Tensor,
        text_features: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
        *,
        num_templates: int = 1,
        return_features: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Video ``[B, T, 3, H, W]`` -> logits ``[B, K]``. ``tokens`` of ``num_templates``
        templates x K classes (template-major) are averaged per class in text space.
        ``return_features``: ``(logits, video embeddings [B, C], class-text features [K, C] or
        None)``, for losses on the features (distillation)."""
        if self.head is not None:
            embeds = self.model.encode_video(video).embeds
            logits = self.head(embeds)
            return (logits, embeds, None) if return_features else logits
        if tokens is not None:
            text_features = ensemble_text_features(self.model.encode_text(tokens), num_templates)
        if text_features is None:
            raise InputError("pass text_features= or tokens=")
        if not return_features:
            return self.model(video, text_features=text_features)
        feats = self.model.encode_video(video)
        return self.model.logits(feats, text_features), feats.embeds, text_features

    @torch.no_grad()
    def text_features(self, tokens: torch.Tensor, num_templates: int = 1) -> torch.Tensor | None:
        """Class-text features ``[K, C]`` for a label set (None with a linear head), computed
        once; float32 so later autocast regions see the same numbers every step. ``tokens`` of
        ``num_templates`` templates x K classes are averaged per class in text space."""
        if self.head is not None:
            return None
        was_training = self.model.training
        self.model.eval()
        try:
            return ensemble_text_features(self.model.encode_text(tokens).float(), num_templates)
        finally:
            self.model.train(was_training)


def build_classifier(cfg, num_classes: int) -> TrainableClassifier:
    """The model a :class:`~xclip_app.train.config.RunConfig` describes, initialised as it says."""
    m = cfg.model
    overrides = dict(
        drop_path_rate=m.drop_path_rate,
        cross_frame=m.cross_frame,
        use_mit=m.use_mit,
        use_prompts=m.use_prompts,
    )
    if m.init_from:
        model = xclip.load_model(m.init_from, attn_impl=m.attn_impl)
        arch_cfg = xclip.get_config(m.arch)
        if (
            model.cfg.num_frames != arch_cfg.num_frames
            or model.cfg.image_size != arch_cfg.image_size
        ):
            raise InputError(
                f"model.init_from={m.init_from} is a {model.cfg.num_frames}-frame "
                f"{model.cfg.image_size}px model but model.arch={m.arch} has "
                f"{arch_cfg.num_frames} frames at {arch_cfg.image_size}px"
            )
        switches = {k: getattr(model.cfg, k) for k in overrides}
        if switches != overrides:
            model = _rebuild_with(model, overrides)
    else:
        model = xclip.create_model(
            m.arch, clip_weights=m.clip_weights, attn_impl=m.attn_impl, **overrides
        )
        if not m.clip_weights:
            log.warning(
                "model.clip_weights is not set: %s starts from random weights (the paper starts "
                "from image CLIP; set model.clip_weights, e.g. ViT-B-16/openai)",
                m.arch,
            )
    head = num_classes if m.head == "linear" else None
    return TrainableClassifier(model, head)


def _rebuild_with(model: xclip.XCLIP, overrides: dict) -> xclip.XCLIP:
    """Copy the weights of ``model`` into a model with other drop-path/ablation switches."""
    new = xclip.XCLIP(model.cfg.replace(**overrides)).set_attn_impl(model.attn_impl)
    sd = model.state_dict()
    own = new.state_dict()
    missing = [k for k in own if k not in sd]
    if any(not k.startswith(("visual.transformer", "mit.", "prompts")) for k in missing):
        switches = " ".join(f"model.{k}={str(v).lower()}" for k, v in overrides.items())
        raise InputError(
            f"cannot adapt the model.init_from weights to {switches}: they lack {missing[:5]}; "
            "start from weights that have these modules or change those switches"
        )
    new.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return new


def load_classifier(path: str | Path, num_classes: int | None = None) -> TrainableClassifier:
    """A trained classifier from a checkpoint/model directory (its ``head.safetensors`` if any),
    any checkpoint :func:`xclip.load_model` reads, or ``ARCH.TAG`` released weights."""
    model = xclip.load_model(path)
    head_file = Path(path) / HEAD_WEIGHTS
    if head_file.is_file():
        sd = read_safetensors(head_file)
        k = sd["weight"].shape[0]
        if num_classes is not None and k != num_classes:
            raise InputError(
                f"{path} has a linear head for {k} classes but the label list has {num_classes}; "
                "a linear head cannot classify other label sets (use a text-head model)"
            )
        clf = TrainableClassifier(model, k)
        clf.head.load_state_dict(sd)
        return clf
    return TrainableClassifier(model)
