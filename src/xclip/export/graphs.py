"""The three graphs an X-CLIP model is exported as: the video side, the text side and the head.

Split the way production CLIP deployments split it: the video side runs once per video, the text
side once per label set (its output can be stored as a label bank, so a server needs no
tokenizer), and the head is the small video-conditioned part that combines the two.

============  =============================================  ===========================================
graph         inputs                                         outputs
============  =============================================  ===========================================
``video``     ``video`` float32 ``[B, T, 3, S, S]``          ``embeds`` ``[B, C]``, ``tokens`` ``[B, N, C]``
``text``      ``tokens`` int64 ``[K, L]`` (L = context)      ``text_features`` ``[K, C]``
``head``      ``embeds``, ``tokens``, ``text_features``      ``logits`` ``[B, K]``
============  =============================================  ===========================================

``B`` (videos or views) and ``K`` (labels) are dynamic. A model without prompts has no
``tokens``: its video graph returns ``embeds`` alone and its head takes two inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model import XCLIP, VideoFeatures

__all__ = [
    "GRAPH_NAMES",
    "HeadGraph",
    "PlainHeadGraph",
    "TextGraph",
    "VideoGraph",
    "graph_io",
    "graphs_of",
]

GRAPH_NAMES = ("video", "text", "head")


class VideoGraph(nn.Module):
    """``video [B, T, 3, S, S]`` -> ``embeds [B, C]`` (and ``tokens [B, N, C]`` with prompts)."""

    def __init__(self, model: XCLIP) -> None:
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.model.encode_video(video)
        return (f.embeds,) if f.tokens is None else (f.embeds, f.tokens)


class TextGraph(nn.Module):
    """``tokens [K, L]`` -> ``text_features [K, C]``.

    :meth:`XCLIP.encode_text` without its padding cut: the cut length depends on the data, and an
    exported graph has fixed shapes apart from the declared dynamic ones. The attention is causal
    and pooling reads the end-of-text position, so the features are the same.
    """

    def __init__(self, model: XCLIP) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        m = self.model
        eot = tokens.argmax(dim=-1)  # [K]
        x = m.token_embedding(tokens)  # [K, L, W]
        x = x + m.positional_embedding[: tokens.shape[1]].to(x.dtype)
        x = m.ln_final(m.transformer(x))
        x = x[torch.arange(x.shape[0], device=x.device), eot]  # [K, W]
        return x @ m.text_projection.to(x.dtype)


class HeadGraph(nn.Module):
    """``embeds [B, C]``, ``tokens [B, N, C]``, ``text_features [K, C]`` -> ``logits [B, K]``."""

    def __init__(self, model: XCLIP) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, embeds: torch.Tensor, tokens: torch.Tensor, text_features: torch.Tensor
    ) -> torch.Tensor:
        return self.model.logits(VideoFeatures(embeds, tokens), text_features)


class PlainHeadGraph(nn.Module):
    """The head of a model without prompts: ``embeds [B, C]``, ``text_features [K, C]`` ->
    ``logits [B, K]``."""

    def __init__(self, model: XCLIP) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeds: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return self.model.logits(VideoFeatures(embeds, None), text_features)


def graphs_of(model: XCLIP) -> dict[str, nn.Module]:
    """The three graphs of ``model`` (sharing its weights, in eval mode), by name."""
    graphs = {
        "video": VideoGraph(model),
        "text": TextGraph(model),
        "head": (HeadGraph if model.cfg.use_prompts else PlainHeadGraph)(model),
    }
    return {name: g.eval() for name, g in graphs.items()}


def graph_io(model: XCLIP) -> dict[str, dict[str, list[str]]]:
    """Input and output names of each graph, in order (they depend on whether ``model`` has
    prompts)."""
    prompts = model.cfg.use_prompts
    video_out = ["embeds", "tokens"] if prompts else ["embeds"]
    return {
        "video": {"inputs": ["video"], "outputs": video_out},
        "text": {"inputs": ["tokens"], "outputs": ["text_features"]},
        "head": {"inputs": [*video_out, "text_features"], "outputs": ["logits"]},
    }
