"""The X-CLIP model: video encoder (CCT + MIT), CLIP text encoder, video-specific prompts.

Module attribute names are those of the original ``models/xclip.py`` (text tower at the top level,
``visual``, ``mit``, ``prompts_generator``, ``prompts_visual_ln``, ``prompts_visual_proj``), so an
original checkpoint's ``state_dict`` loads with ``strict=True``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xclip.errors import InputError

from .attention import check_attn_impl
from .config import PreprocessConfig, XCLIPConfig
from .cross_frame import CrossFrameCommunicationTransformer
from .mit import MultiframeIntegrationTransformer
from .prompt import VideoSpecificPrompt
from .text import TextTransformer


@dataclass
class VideoFeatures:
    """Output of :meth:`XCLIP.encode_video`.

    ``embeds``: video embedding ``[B, C]`` (MIT output, not normalised).
    ``tokens``: time-averaged, ``prompts_visual_ln``-normalised and projected patch tokens
    ``[B, N, C]``, the keys/values of the prompt generator (``None`` without prompts).
    """

    embeds: torch.Tensor
    tokens: torch.Tensor | None


class XCLIP(nn.Module):
    """X-CLIP (Ni et al., ECCV 2022).

    ``forward(video, tokens)`` returns logits ``[B, K]``: ``exp(logit_scale) * <v_b, t_bk>`` with the
    L2-normalised video embedding ``v_b`` and the video-conditioned class-text embedding ``t_bk``.
    The model holds no hidden state: text features can be computed once with :meth:`encode_text`
    and passed as ``text_features=``.
    """

    def __init__(self, cfg: XCLIPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.preprocess = PreprocessConfig.for_config(cfg)
        c = cfg.embed_dim
        # text tower (top-level names as OpenAI CLIP / the original X-CLIP)
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.text_width))
        self.transformer = TextTransformer(
            cfg.text_width, cfg.text_layers, cfg.text_num_heads, cfg.quick_gelu
        )
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.text_projection = nn.Parameter(torch.empty(cfg.text_width, c))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        # video tower
        self.visual = CrossFrameCommunicationTransformer(
            image_size=cfg.image_size,
            patch_size=cfg.patch_size,
            width=cfg.vision_width,
            layers=cfg.vision_layers,
            heads=cfg.vision_num_heads,
            output_dim=c,
            drop_path_rate=cfg.drop_path_rate,
            cross_frame=cfg.cross_frame,
            quick_gelu=cfg.quick_gelu,
        )
        if cfg.use_mit:
            self.mit = MultiframeIntegrationTransformer(
                cfg.num_frames, c, cfg.mit_num_heads, cfg.mit_layers
            )
        if cfg.use_prompts:
            self.prompts_visual_ln = nn.LayerNorm(cfg.vision_width)
            # N(0, 1), unscaled: what the original (and HF) initialise it to.
            self.prompts_visual_proj = nn.Parameter(torch.randn(cfg.vision_width, c))
            self.prompts_generator = VideoSpecificPrompt(
                c, cfg.prompt_num_heads, cfg.prompt_layers, cfg.prompt_alpha
            )
        self.attn_impl = "sdpa"
        self._init_text()

    def _init_text(self) -> None:
        # OpenAI CLIP's initialize_parameters() (overwritten when CLIP weights are loaded).
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=self.cfg.text_width**-0.5)

    # switches ----------------------------------------------------------------------------------
    def set_attn_impl(self, impl: str) -> XCLIP:
        """``"sdpa"`` (``F.scaled_dot_product_attention``, default) or ``"plain"`` (matmul+softmax)."""
        check_attn_impl(impl)
        self.attn_impl = impl
        for m in self.modules():
            if hasattr(m, "attn_impl") and m is not self:
                m.attn_impl = impl
        return self

    def set_grad_checkpointing(self, enable: bool = True) -> XCLIP:
        """Recompute block activations in the backward pass (vision and text towers)."""
        self.visual.transformer.grad_checkpointing = enable
        self.transformer.grad_checkpointing = enable
        return self

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.visual.conv1.weight.device

    # encoders ----------------------------------------------------------------------------------
    def check_video(self, video: torch.Tensor) -> None:
        """Raise a clear error unless ``video`` is ``[B, T, 3, H, W]`` with this model's T and size."""
        cfg = self.cfg
        if video.ndim != 5:
            raise InputError(
                f"video must be a 5-D tensor [B, T, 3, H, W], got shape {tuple(video.shape)}"
                + (" (add a batch dimension with video[None])" if video.ndim == 4 else "")
            )
        _, t, ch, h, w = video.shape
        if t != cfg.num_frames:
            raise InputError(
                f"this model was built for {cfg.num_frames} frames per video but got {t}; sample "
                f"{cfg.num_frames} frames (the MIT position embedding and the message attention "
                f"depend on T), or load/convert the checkpoint with num_frames={t} to interpolate"
            )
        if ch != 3:
            raise InputError(f"video must have 3 colour channels at dim 2, got {ch}")
        if (h, w) != (cfg.image_size, cfg.image_size):
            raise InputError(
                f"this model takes {cfg.image_size}x{cfg.image_size} frames but got {h}x{w}; "
                f"resize and centre-crop to {cfg.image_size} (see model.preprocess)"
            )

    def encode_video(self, video: torch.Tensor) -> VideoFeatures:
        """Normalised video ``[B, T, 3, H, W]`` -> :class:`VideoFeatures`."""
        self.check_video(video)
        b, t = video.shape[:2]
        frames, patches = self.visual(video.flatten(0, 1), t)  # [B*T, C], [B*T, N, D]
        frames = frames.view(b, t, -1)  # [B, T, C]
        embeds = self.mit(frames) if self.cfg.use_mit else frames.mean(dim=1)  # [B, C]
        tokens = None
        if self.cfg.use_prompts:
            # LN per frame, then average over T before the projection: the projection is linear,
            # so this equals the original's project-then-average with T times less compute.
            tokens = self.prompts_visual_ln(patches)  # [B*T, N, D]
            tokens = tokens.view(b, t, *tokens.shape[1:]).mean(dim=1)  # [B, N, D]
            tokens = tokens @ self.prompts_visual_proj.to(tokens.dtype)  # [B, N, C]
        return VideoFeatures(embeds=embeds, tokens=tokens)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[K, L]`` (L <= context length, EOT = highest id) -> text embeddings ``[K, C]``.

        Padding after the longest EOT is cut before the transformer: the attention is causal and
        pooling reads the EOT position, so the result is unchanged and short labels cost
        a fraction of the 77-token compute.
        """
        if tokens.ndim != 2:
            raise InputError(f"tokens must be [K, L] token ids, got shape {tuple(tokens.shape)}")
        if tokens.shape[1] > self.cfg.context_length:
            raise InputError(
                f"tokens have length {tokens.shape[1]} > context length {self.cfg.context_length}"
            )
        if tokens.dtype.is_floating_point:
            raise TypeError(f"tokens must be integer ids (use xclip.tokenize), got {tokens.dtype}")
        eot = tokens.argmax(dim=-1)  # [K]
        n = int(eot.max()) + 1 if tokens.numel() else 1
        x = self.token_embedding(tokens[:, :n])  # [K, n, W]
        x = x + self.positional_embedding[:n].to(x.dtype)
        x = self.transformer(x)
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), eot]  # [K, W]
        return x @ self.text_projection.to(x.dtype)  # [K, C]

    def prompt_text(self, text_features: torch.Tensor, video: VideoFeatures) -> torch.Tensor:
        """Class-text ``[K, C]`` -> video-specific class-text ``[B, K, C]``."""
        b = video.embeds.shape[0]
        text = text_features.to(video.embeds.dtype).unsqueeze(0).expand(b, -1, -1)  # [B, K, C]
        if self.cfg.use_prompts:
            text = text + self.prompts_generator(text, video.tokens)
        return text

    def logits(self, video: VideoFeatures, text_features: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K]`` from encoded video and class-text features ``[K, C]``."""
        text = F.normalize(self.prompt_text(text_features, video), dim=-1)  # [B, K, C]
        v = F.normalize(video.embeds, dim=-1)  # [B, C]
        scale = self.logit_scale.exp()
        return scale * torch.einsum("bc,bkc->bk", v, text.to(v.dtype))

    def forward(
        self,
        video: torch.Tensor,
        tokens: torch.Tensor | None = None,
        *,
        text_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Normalised video ``[B, T, 3, H, W]`` and ``tokens [K, L]`` (or ``text_features [K, C]``)
        -> logits ``[B, K]``."""
        if (tokens is None) == (text_features is None):
            raise InputError("pass exactly one of tokens= or text_features=")
        if text_features is None:
            text_features = self.encode_text(tokens)
        return self.logits(self.encode_video(video), text_features)
