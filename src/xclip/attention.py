"""Multi-head attention with the parameter names of ``nn.MultiheadAttention``.

The original X-CLIP (and OpenAI CLIP) build every self-attention from ``nn.MultiheadAttention``, so
their checkpoints hold ``in_proj_weight`` [3D, D], ``in_proj_bias`` [3D] and ``out_proj.{weight,bias}``.
This module keeps exactly those names (checkpoint compatibility) but runs batch-first and computes
attention through ``F.scaled_dot_product_attention`` by default, with a plain matmul-softmax path
that can be selected for numerical reference (``attn_impl="plain"``).

``nn.MultiheadAttention`` itself is not used: it has no plain path, and its inference fast path
(no grad, no mask) differs from this computation in the last bit.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from xclip.errors import InputError

AttnImpl = Literal["sdpa", "plain"]
ATTN_IMPLS: tuple[str, ...] = ("sdpa", "plain")


def check_attn_impl(impl: str) -> str:
    """``impl`` if it is one of :data:`ATTN_IMPLS`, else a ``ValueError`` listing them."""
    if impl not in ATTN_IMPLS:
        raise InputError(f"attn_impl must be one of {ATTN_IMPLS}, got {impl!r}")
    return impl


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    impl: str = "sdpa",
) -> torch.Tensor:
    """Scaled dot-product attention on ``[N, H, L, Dh]`` tensors (scale ``Dh**-0.5``)."""
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    # Plain path: the textbook formula, used as the numerical reference in tests.
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # [N, H, Lq, Lk]
    if causal:
        lq, lk = scores.shape[-2:]
        mask = torch.ones(lq, lk, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    return torch.matmul(scores.softmax(dim=-1), v)


class MultiheadSelfAttention(nn.Module):
    """Self-attention over batch-first tokens ``[N, L, D]`` with ``nn.MultiheadAttention`` names.

    Initialisation follows ``nn.MultiheadAttention._reset_parameters`` (xavier-uniform ``in_proj_weight``,
    zero biases, default ``Linear`` init of ``out_proj.weight``), which is what the original X-CLIP
    leaves on its new ``message_attn`` modules.
    """

    def __init__(self, width: int, heads: int, *, causal: bool = False) -> None:
        super().__init__()
        if width % heads != 0:
            raise InputError(f"width {width} is not divisible by heads {heads}")
        self.width = width
        self.heads = heads
        self.causal = causal
        self.attn_impl: str = "sdpa"
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        self.out_proj.reset_parameters()
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape  # [N, L, D]
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # [N, L, 3D]
        qkv = qkv.view(n, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [N, H, L, Dh]
        out = attention(q, k, v, causal=self.causal, impl=self.attn_impl)
        out = out.transpose(1, 2).reshape(n, length, d)  # [N, L, D]
        return self.out_proj(out)


class CrossAttention(nn.Module):
    """Cross-attention of the video-specific prompt generator (original ``MulitHeadAttention``).

    Names ``q_proj``/``k_proj``/``v_proj`` (no bias) and ``proj`` (with bias) follow the original
    ``models/prompt.py`` so its checkpoints load strictly.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads != 0:
            raise InputError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.attn_impl: str = "sdpa"
        self.q_proj = nn.Linear(width, width, bias=False)
        self.k_proj = nn.Linear(width, width, bias=False)
        self.v_proj = nn.Linear(width, width, bias=False)
        self.proj = nn.Linear(width, width)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """q ``[B, K, C]`` attends to kv ``[B, N, C]``; returns ``[B, K, C]``."""
        b, nq, c = q.shape
        nk = kv.shape[1]
        h = self.heads
        q = self.q_proj(q).view(b, nq, h, c // h).transpose(1, 2)  # [B, H, K, C/H]
        k = self.k_proj(kv).view(b, nk, h, c // h).transpose(1, 2)  # [B, H, N, C/H]
        v = self.v_proj(kv).view(b, nk, h, c // h).transpose(1, 2)
        out = attention(q, k, v, impl=self.attn_impl)  # [B, H, K, C/H]
        return self.proj(out.transpose(1, 2).reshape(b, nq, c))
