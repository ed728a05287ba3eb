"""Cross-frame Communication Transformer: CLIP's ViT with message tokens (paper Sec. 3.2).

Names follow the original ``models/cct.py`` (``visual.transformer.resblocks.{i}.message_fc`` etc.).
All tensors here are batch-first; the original runs sequence-first, which changes no parameter.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import MultiheadSelfAttention
from .transformer import make_drop_path, make_mlp, run_blocks


class CrossFrameAttentionBlock(nn.Module):
    """One CCT block (the original ``CrossFramelAttentionBlock``).

    1. ``message_fc`` turns each frame's block-input [CLS] token into a message token;
    2. ``message_attn`` (pre-LN ``message_ln``, residual) lets the T message tokens of a video attend
       to each other (no temporal position embedding, as the original);
    3. each frame's fused message is appended as token L+1 to that frame's tokens for the pretrained
       CLIP ``attn`` (intra-frame diffusion), then dropped before the MLP.

    With ``cross_frame=False`` the message modules are absent and this is a plain CLIP block (the
    CLIP-Mean ablation).
    """

    def __init__(
        self,
        width: int,
        heads: int,
        drop_path: float = 0.0,
        cross_frame: bool = True,
        quick_gelu: bool = True,
    ) -> None:
        super().__init__()
        self.cross_frame = cross_frame
        if cross_frame:
            self.message_fc = nn.Linear(width, width)
            self.message_ln = nn.LayerNorm(width)
            self.message_attn = MultiheadSelfAttention(width, heads)
        self.attn = MultiheadSelfAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.drop_path = make_drop_path(drop_path)
        self.mlp = make_mlp(width, 4 * width, quick_gelu)
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        bt, length, d = x.shape  # [B*T, L, D], frame index fastest (b*T + t)
        if self.cross_frame:
            msg = self.message_fc(x[:, 0]).view(bt // num_frames, num_frames, d)  # [B, T, D]
            msg = msg + self.drop_path(self.message_attn(self.message_ln(msg)))  # across frames
            x = torch.cat([x, msg.reshape(bt, 1, d)], dim=1)  # [B*T, L+1, D]
            x = x + self.drop_path(self.attn(self.ln_1(x)))
            x = x[:, :length]  # drop the message token
        else:
            x = x + self.drop_path(self.attn(self.ln_1(x)))
        return x + self.drop_path(self.mlp(self.ln_2(x)))


class VisionTransformerBody(nn.Module):
    """Holds ``resblocks`` so keys read ``visual.transformer.resblocks.{i}``."""

    def __init__(
        self,
        width: int,
        layers: int,
        heads: int,
        drop_path_rate: float,
        cross_frame: bool,
        quick_gelu: bool = True,
    ) -> None:
        super().__init__()
        # One rate per block, linearly increasing (the original's ``dpr``).
        rates = (
            torch.linspace(0, drop_path_rate, layers).tolist()
            if drop_path_rate > 0
            else [0.0] * layers
        )
        self.resblocks = nn.ModuleList(
            CrossFrameAttentionBlock(width, heads, rates[i], cross_frame, quick_gelu)
            for i in range(layers)
        )
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        return run_blocks(self.resblocks, x, self.grad_checkpointing, num_frames)


class CrossFrameCommunicationTransformer(nn.Module):
    """CLIP ViT with cross-frame communication; the ``visual`` submodule of X-CLIP."""

    def __init__(
        self,
        *,
        image_size: int,
        patch_size: int,
        width: int,
        layers: int,
        heads: int,
        output_dim: int,
        drop_path_rate: float = 0.0,
        cross_frame: bool = True,
        quick_gelu: bool = True,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.patch_size = patch_size
        grid = image_size // patch_size
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = VisionTransformerBody(
            width, layers, heads, drop_path_rate, cross_frame, quick_gelu
        )
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``[B*T, 3, H, W]`` -> (frame embeddings ``[B*T, C]``, patch tokens ``[B*T, N, D]``).

        Patch tokens are taken after the last block *without* ``ln_post``, as the original feeds
        them to the prompt generator.
        """
        x = self.conv1(x.to(self.conv1.weight.dtype))  # [B*T, D, g, g]
        x = x.flatten(2).transpose(1, 2)  # [B*T, N, D]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)  # [B*T, L, D]
        x = self.ln_pre(x)
        x = self.transformer(x, num_frames)
        cls_x = self.ln_post(x[:, 0]) @ self.proj  # [B*T, C]
        return cls_x, x[:, 1:]
