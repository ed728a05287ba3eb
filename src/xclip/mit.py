"""Multi-frame Integration Transformer (paper Sec. 3.2, original ``models/mit.py``)."""

from __future__ import annotations

import torch
from torch import nn

from .transformer import ResidualAttentionBlock


class MultiframeIntegrationTransformer(nn.Module):
    """Frame embeddings ``[B, T, C]`` -> video embedding ``[B, C]``.

    Temporal position embedding, ``layers`` pre-LN blocks, an outer residual to the input *without*
    the position embedding, then the mean over T; exactly the original's forward.
    """

    def __init__(self, num_frames: int, width: int, heads: int, layers: int = 1) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.empty(1, num_frames, width))
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Original init: trunc_normal(0.02) on every Linear weight (out_proj included), zero biases,
        # LayerNorm ones/zeros; the fused in_proj keeps MHA's xavier-uniform.
        nn.init.trunc_normal_(self.positional_embedding, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ori = x  # [B, T, C]
        x = x + self.positional_embedding.to(x.dtype)
        for block in self.resblocks:
            x = block(x)
        x = x.to(ori.dtype) + ori
        return x.mean(dim=1)  # [B, C]
