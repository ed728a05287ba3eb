"""FLOP counting the way the X-CLIP paper did it, without fvcore and without building weights.

The paper's GFLOPs (Table 1; ``reference/original-xclip.md`` §4.6) come from fvcore's
``FlopCountAnalysis`` on the original model with **one video** ``[1, T, 3, H, W]`` and **one class
text** ``[1, 77]``. fvcore counts a multiply-add as **one** FLOP, includes every matmul (the
attention ``q @ k^T`` and ``attn @ v`` too), the patch convolution and the text encoder, and also
counts LayerNorm as 5 FLOPs per element (4 without affine). It ignores element-wise ops (GELU,
softmax, residual adds).

:func:`count_flops` reproduces that with :class:`torch.utils.flop_counter.FlopCounterMode` on a model
built on the ``meta`` device: no weights are allocated and no arithmetic is done, so even
L/14@336 with 16 frames is counted in well under a second. ``FlopCounterMode`` reports 2 FLOPs per
multiply-add; the numbers here are halved to the paper's convention (GFLOPs = G multiply-adds).

Two counting modes:

``mode="paper"`` (default): the paper's convention, on the *original* computation graph:
    * the text tower runs on all 77 positions (our :meth:`XCLIP.encode_text` cuts the padding after
      the longest EOT token, which changes no result but would count e.g. 3 tokens for "archery");
      this is the count for a token row whose EOT sits at position 76;
    * LayerNorm counted as fvcore does (5 per element with affine weights);
    * ``prompts_visual_proj`` applied to the patch tokens of every frame before the temporal mean,
      as the original does (we average first, which is T times cheaper and numerically the same up
      to rounding).
``mode="model"``: the multiply-adds our forward actually executes for the given ``text_length``
    (matmul, linear, conv, attention; no norms): what a throughput benchmark should divide by.

Attention is counted in full even where it is causal (text), as fvcore counts the dense matmul.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from xclip.errors import InputError

from .config import XCLIPConfig, get_config, registered_name
from .model import XCLIP
from .paper import PAPER_GFLOPS

# PAPER_GFLOPS lives in xclip.paper; it stays exported here as the counter's reference values.
__all__ = ["PAPER_GFLOPS", "FlopReport", "count_flops", "flop_counter", "flops_table"]

MODES = ("paper", "model")
# Components in report order; "vision.message" is the part of "vision" spent on cross-frame
# communication (message_fc, message_ln, message_attn) and is not added to the total again.
COMPONENTS = ("vision", "vision.message", "mit", "prompt", "text", "head")

_aten = torch.ops.aten
_MESSAGE_MODULE = re.compile(r"\.message_(fc|ln|attn)$")


def _layer_norm_flop(input_shape, normalized_shape=None, weight=None, bias=None, *args, **kwargs):
    # fvcore's norm_flop_counter: 5 per element with affine parameters, 4 without. Returned in
    # FlopCounterMode's unit (2 per multiply-add) so halving gives fvcore's number.
    return 2 * math.prod(input_shape) * (5 if weight is not None else 4)


def _sdpa_flop(query_shape, key_shape, value_shape, *args, **kwargs):
    # q @ k^T and attn @ v over [B, H, L, Dh]: torch's formula for the CUDA sdpa kernels
    # (dense, also when causal), in FlopCounterMode's unit of 2 per multiply-add.
    *batch, lq, dh = query_shape
    lk, dv = key_shape[-2], value_shape[-1]
    return 2 * math.prod(batch) * lq * lk * (dh + dv)


@dataclass
class FlopReport:
    """GFLOPs (G multiply-adds) of one forward, total and per component."""

    arch: str | None
    num_frames: int
    image_size: int
    text_length: int
    num_texts: int
    batch_size: int
    mode: str
    components: dict[str, float] = field(default_factory=dict)  # GFLOPs per component
    paper_gflops: float | None = None

    @property
    def total(self) -> float:
        """Total GFLOPs (``vision.message`` is inside ``vision`` and not added twice)."""
        return sum(v for k, v in self.components.items() if "." not in k)

    @property
    def rel_diff(self) -> float | None:
        """``total / paper - 1`` when the paper reports this architecture, else ``None``."""
        if self.paper_gflops is None:
            return None
        return self.total / self.paper_gflops - 1.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["total_gflops"] = self.total
        d["rel_diff"] = self.rel_diff
        return d

    def format(self) -> str:
        """A human-readable multi-line summary."""
        name = self.arch or "custom config"
        lines = [
            f"{name}: {self.total:.2f} GFLOPs ({self.mode} convention; "
            f"{self.batch_size} video x {self.num_frames} frames x {self.image_size}px, "
            f"{self.num_texts} text x {self.text_length} tokens; 1 multiply-add = 1 FLOP)"
        ]
        total = self.total or 1.0
        for k, v in self.components.items():
            label = f"  {k}" if "." not in k else f"    {k.split('.', 1)[1]} (in vision)"
            lines.append(f"{label:<28} {v:10.3f}  {100 * v / total:5.1f}%")
        if self.paper_gflops is not None:
            lines.append(
                f"paper: {self.paper_gflops:g} GFLOPs, ours {self.total:.2f} "
                f"({100 * self.rel_diff:+.2f}%)"
            )
        return "\n".join(lines)


def _resolve(model_or_cfg: Any) -> tuple[str | None, XCLIPConfig]:
    if isinstance(model_or_cfg, str):
        return model_or_cfg, get_config(model_or_cfg)
    if isinstance(model_or_cfg, XCLIPConfig):
        cfg = model_or_cfg
    elif isinstance(getattr(model_or_cfg, "cfg", None), XCLIPConfig):
        cfg = model_or_cfg.cfg
    else:
        raise TypeError(
            f"count_flops takes an XCLIP model, an XCLIPConfig or an architecture name, "
            f"got {type(model_or_cfg).__name__}"
        )
    return registered_name(cfg), cfg


def flop_counter(*, count_norms: bool = False, display: bool = False) -> FlopCounterMode:
    """A ``FlopCounterMode`` (2 FLOPs per multiply-add) that also counts the CPU fused attention
    kernel (``_scaled_dot_product_flash_attention_for_cpu``, which torch's registry misses, so the
    real CPU forward with ``attn_impl="sdpa"`` would lose every attention matmul) and, with
    ``count_norms``, LayerNorm as fvcore does (5 per element with affine weights)."""
    custom = {}
    cpu_sdpa = getattr(_aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_sdpa is not None:
        custom[cpu_sdpa] = _sdpa_flop
    if count_norms:
        custom[_aten.native_layer_norm] = _layer_norm_flop
    return FlopCounterMode(display=display, depth=None, custom_mapping=custom)


class _Counter:
    """One ``FlopCounterMode`` per component; results in G multiply-adds."""

    def __init__(self, count_norms: bool) -> None:
        self.count_norms = count_norms
        self.components: dict[str, float] = {}

    def run(self, name: str, fn, *args):
        mode = flop_counter(count_norms=self.count_norms)
        with mode:
            out = fn(*args)
        self.components[name] = self.components.get(name, 0.0) + mode.get_total_flops() / 2e9
        if name == "vision":
            msg = sum(
                sum(ops.values())
                for mod, ops in mode.get_flop_counts().items()
                if _MESSAGE_MODULE.search(mod)
            )
            self.components["vision.message"] = msg / 2e9
        return out


@torch.no_grad()
def count_flops(
    model_or_cfg: Any,
    *,
    num_frames: int | None = None,
    image_size: int | None = None,
    text_length: int | None = None,
    num_texts: int = 1,
    batch_size: int = 1,
    mode: str = "paper",
) -> FlopReport:
    """Count the GFLOPs (G multiply-adds) of one X-CLIP forward.

    Args:
        model_or_cfg: an :class:`~xclip.XCLIP` (only its config is used), an
            :class:`~xclip.XCLIPConfig`, or a registered architecture name.
        num_frames, image_size: count for another frame count / input size.
        text_length: tokens per text through the text tower (default: the context length, 77,
            as the paper). With ``mode="model"`` pass the trimmed length ``encode_text`` runs
            (position of the longest EOT + 1).
        num_texts, batch_size: class texts ``K`` and videos ``B`` (the paper: 1 and 1).
        mode: ``"paper"`` or ``"model"`` (see the module docstring).

    The count runs on the ``meta`` device: no memory, no arithmetic, well under a second.
    """
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    arch, cfg = _resolve(model_or_cfg)
    changes = {}
    if num_frames is not None and num_frames != cfg.num_frames:
        changes["num_frames"] = int(num_frames)
    if image_size is not None and image_size != cfg.image_size:
        changes["image_size"] = int(image_size)
    if changes:
        cfg = cfg.replace(**changes)
        arch = registered_name(cfg)
    n_tok = cfg.context_length if text_length is None else int(text_length)
    if not 1 <= n_tok <= cfg.context_length:
        raise InputError(f"text_length must be in [1, {cfg.context_length}], got {n_tok}")
    if num_texts < 1 or batch_size < 1:
        raise InputError("num_texts and batch_size must be >= 1")

    paper = mode == "paper"
    counter = _Counter(count_norms=paper)
    b, t, k = batch_size, cfg.num_frames, num_texts
    with torch.device("meta"):
        model = XCLIP(cfg).eval()
        video = torch.empty(b, t, 3, cfg.image_size, cfg.image_size)
        ids = torch.zeros(k, n_tok, dtype=torch.long)
    model.set_attn_impl("sdpa")

    # video tower: CCT (message tokens included), then MIT ---------------------------------
    frames, patches = counter.run("vision", model.visual, video.flatten(0, 1), t)
    frames = frames.view(b, t, -1)

    def _mit(x):
        return model.mit(x) if cfg.use_mit else x.mean(dim=1)

    embeds = counter.run("mit", _mit, frames)

    # text tower: the same ops as XCLIP.encode_text on n_tok positions (encode_text itself reads
    # the EOT position with .item(), which the meta device cannot do) -----------------------
    def _text(ids):
        x = model.token_embedding(ids) + model.positional_embedding[:n_tok]
        x = model.ln_final(model.transformer(x))
        return x[:, -1] @ model.text_projection  # EOT at the last counted position

    text = counter.run("text", _text, ids)

    # video-specific prompts ----------------------------------------------------------------
    def _prompt(text, patches):
        if not cfg.use_prompts:
            return text.unsqueeze(0).expand(b, -1, -1)
        tokens = model.prompts_visual_ln(patches)  # [B*T, N, D]
        if paper:  # the original projects every frame's tokens, then averages over T
            tokens = (tokens @ model.prompts_visual_proj).view(b, t, -1, cfg.embed_dim).mean(1)
        else:  # ours: average, then project (XCLIP.encode_video)
            tokens = tokens.view(b, t, *tokens.shape[1:]).mean(1) @ model.prompts_visual_proj
        text = text.unsqueeze(0).expand(b, -1, -1)
        return text + model.prompts_generator(text, tokens)

    prompted = counter.run("prompt", _prompt, text, patches)

    # head: cosine similarity logits ----------------------------------------------------------
    def _head(v, txt):
        v = torch.nn.functional.normalize(v, dim=-1)
        txt = torch.nn.functional.normalize(txt, dim=-1)
        return model.logit_scale.exp() * torch.einsum("bc,bkc->bk", v, txt)

    counter.run("head", _head, embeds, prompted)

    comps = {name: counter.components.get(name, 0.0) for name in COMPONENTS}
    if not cfg.cross_frame:
        comps.pop("vision.message")
    return FlopReport(
        arch=arch,
        num_frames=cfg.num_frames,
        image_size=cfg.image_size,
        text_length=n_tok,
        num_texts=k,
        batch_size=b,
        mode=mode,
        components=comps,
        paper_gflops=PAPER_GFLOPS.get(arch)
        if arch and k == 1 and b == 1 and paper and n_tok == cfg.context_length
        else None,
    )


def flops_table(names: list[str] | None = None, mode: str = "paper") -> list[FlopReport]:
    """:func:`count_flops` for several architectures (default: all with a paper number)."""
    return [count_flops(n, mode=mode) for n in (names or list(PAPER_GFLOPS))]
