"""The plain CLIP transformer pieces shared by the text tower and the MIT.

Parameter names (``ln_1``, ``attn``, ``mlp.c_fc``, ``mlp.c_proj``, ``ln_2``) are OpenAI CLIP's, which the
original X-CLIP reuses, so checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .attention import MultiheadSelfAttention


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: the activation OpenAI CLIP was trained with (not ``nn.GELU``).

    torch has no such module: ``nn.GELU(approximate="tanh")`` is a different function.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


# Not torchvision.ops.StochasticDepth(p, "row"): same draws and no state, but it computes
# x * (mask / keep), which differs from our x * mask / keep in the last bit (checked in fp32/16/64).
class DropPath(nn.Module):
    """Stochastic depth per sample (identity at eval time or with ``p == 0``)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def make_drop_path(p: float) -> nn.Module:
    """:class:`DropPath` with rate ``p``, or ``nn.Identity`` when ``p`` is 0."""
    # The original registers no DropPath at all when the rate is 0: keep the module tree identical.
    return DropPath(p) if p > 0 else nn.Identity()


def make_mlp(width: int, hidden: int, quick_gelu: bool = True) -> nn.Sequential:
    """CLIP's MLP ``c_fc -> QuickGELU (or exact GELU) -> c_proj`` on ``[..., width]``."""
    return nn.Sequential(
        OrderedDict(
            [
                ("c_fc", nn.Linear(width, hidden)),
                ("gelu", QuickGELU() if quick_gelu else nn.GELU()),
                ("c_proj", nn.Linear(hidden, width)),
            ]
        )
    )


class ResidualAttentionBlock(nn.Module):
    """Pre-LN transformer block on batch-first tokens ``[N, L, D]``."""

    def __init__(
        self, width: int, heads: int, *, causal: bool = False, quick_gelu: bool = True
    ) -> None:
        super().__init__()
        self.attn = MultiheadSelfAttention(width, heads, causal=causal)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = make_mlp(width, 4 * width, quick_gelu)
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, checkpointing: bool, *args) -> torch.Tensor:
    """Apply ``blocks`` in sequence, with activation checkpointing per block when asked for."""
    use_ckpt = checkpointing and torch.is_grad_enabled()
    for block in blocks:
        if use_ckpt:
            x = torch.utils.checkpoint.checkpoint(block, x, *args, use_reentrant=False)
        else:
            x = block(x, *args)
    return x
