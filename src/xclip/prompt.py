"""Video-specific prompt generator (paper Sec. 3.3, original ``models/prompt.py``)."""

from __future__ import annotations

import torch
from torch import nn

from .attention import CrossAttention
from .transformer import QuickGELU


class PromptGeneratorLayer(nn.Module):
    """Class-text queries cross-attend to the video's patch tokens, then an MLP (pre-LN, residual).

    ``mlp`` keeps the original's ``Sequential(Linear, QuickGELU, Dropout, Linear)`` so the weights
    sit at indices ``mlp.0`` and ``mlp.3``.
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.cross_attn = CrossAttention(width, heads)
        self.norm1 = nn.LayerNorm(width)
        self.norm3 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width),
            QuickGELU(),
            nn.Dropout(dropout),
            nn.Linear(4 * width, width),
        )

    def forward(self, x: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        x = x + self.cross_attn(self.norm1(x), visual)  # [B, K, C]
        return x + self.mlp(self.norm3(x))


class VideoSpecificPrompt(nn.Module):
    """Returns ``alpha * decoder(text, visual)``; the caller adds it to the text embedding.

    ``alpha`` is a learned per-channel vector initialised to ``alpha`` (0.1 in the original). The
    decoder output includes the text itself through its residuals, so the prompted text is
    ``text + alpha * (text + delta)``, exactly as the original.
    """

    def __init__(self, width: int, heads: int, layers: int = 2, alpha: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.decoder = nn.ModuleList(PromptGeneratorLayer(width, heads) for _ in range(layers))
        self.alpha = nn.Parameter(torch.full((width,), float(alpha)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """text ``[B, K, C]``, visual patch tokens ``[B, N, C]`` -> prompt offset ``[B, K, C]``."""
        visual = self.norm(visual)
        for layer in self.decoder:
            text = layer(text, visual)
        return self.alpha * text
