"""The CLIP text tower pieces (the original rebuilds them at the top level of X-CLIP)."""

from __future__ import annotations

import torch
from torch import nn

from .transformer import ResidualAttentionBlock, run_blocks


class TextTransformer(nn.Module):
    """Causal pre-LN transformer on ``[K, L, W]``; keys read ``transformer.resblocks.{j}``."""

    def __init__(self, width: int, layers: int, heads: int, quick_gelu: bool = True) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(width, heads, causal=True, quick_gelu=quick_gelu)
            for _ in range(layers)
        )
        self.grad_checkpointing = False
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # OpenAI CLIP's initialize_parameters() for the text transformer.
        width, layers = self.resblocks[0].ln_1.normalized_shape[0], len(self.resblocks)
        proj_std = (width**-0.5) * ((2 * layers) ** -0.5)
        attn_std = width**-0.5
        fc_std = (2 * width) ** -0.5
        for block in self.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_blocks(self.resblocks, x, self.grad_checkpointing)
