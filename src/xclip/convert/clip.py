"""Image CLIP weights (OpenAI layout) as the starting point of a new X-CLIP (paper Sec. 3.4).

The original ``models/xclip.py::load`` copies every CLIP tensor into X-CLIP by name (X-CLIP keeps
OpenAI CLIP's names) and leaves only the new modules at their initialisation: the message tokens
``visual.transformer.resblocks.*.message_{fc,ln,attn}``, ``mit``, ``prompts_generator``,
``prompts_visual_ln`` and ``prompts_visual_proj``. Here that copy is strict: any other missing key,
any extra CLIP key and any shape mismatch is an error that names the keys.

Sources (:func:`load_clip_weights`): a state-dict file (``.pt``/``.pth``/``.bin``/``.safetensors``),
an open_clip training checkpoint (``{"state_dict": ..., "epoch": ...}``, maybe ``module.``-prefixed),
or an open_clip pretrained name (``"ViT-B-32/openai"``, ``"ViT-B-16/laion2b_s34b_b88k"``; needs the
optional ``open_clip_torch`` package). OpenAI's own TorchScript ``.pt`` archives run code when
loaded, so they are converted once by :func:`convert_openai_jit` (``xclip-video convert-openai``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from xclip.errors import InputError

from ..checkpoint import (
    CheckpointError,
    extract_state_dict,
    read_safetensors,
    read_torch_file,
    save_safetensors,
)
from ..config import get_config, list_models

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]

# Integer entries OpenAI's TorchScript state dicts carry next to the weights (the original deletes them).
JIT_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")

# The modules X-CLIP adds to image CLIP: the only keys CLIP weights may leave uninitialised.
NEW_MODULE_PATTERN = re.compile(
    r"visual\.transformer\.resblocks\.\d+\.message_(fc|ln|attn)\..+"
    r"|mit\..+"
    r"|prompts_generator\..+"
    r"|prompts_visual_ln\..+"
    r"|prompts_visual_proj"
)

_WIDTH_LETTER = {384: "S", 512: "M", 768: "B", 1024: "L", 1280: "H", 1408: "g", 1664: "G"}


@dataclass
class ClipWeights:
    """An OpenAI-layout CLIP state dict and what is known about how it was trained.

    ``quick_gelu``: True if the weights were trained with QuickGELU (OpenAI CLIP, some open_clip
    runs), False for exact GELU (most LAION/DataComp open_clip weights), None when unknown (a bare
    state-dict file). X-CLIP's default (and every released X-CLIP) is QuickGELU.
    """

    state_dict: StateDict
    quick_gelu: bool | None
    source: str

    @property
    def architecture(self) -> str:
        return clip_architecture(self.state_dict)


def clip_architecture(sd: Mapping[str, torch.Tensor]) -> str:
    """``"ViT-B/32"``, ``"ViT-L/14@336px"``... from the shapes of a ViT CLIP state dict."""
    _check_vit(sd, "state dict")
    conv = sd["visual.conv1.weight"]
    width, patch = conv.shape[0], conv.shape[-1]
    grid = math.isqrt(sd["visual.positional_embedding"].shape[0] - 1)
    size = grid * patch
    name = f"ViT-{_WIDTH_LETTER.get(width, f'w{width}')}/{patch}"
    return name if size == 224 else f"{name}@{size}px"


def _check_vit(sd: Mapping[str, torch.Tensor], source: str) -> None:
    if any(k.startswith(("visual.layer1.", "visual.attnpool.")) for k in sd):
        raise CheckpointError(
            f"{source} holds ResNet CLIP weights (visual.layer1.*, visual.attnpool.*); X-CLIP extends "
            f"a CLIP *ViT* (ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px). Use ViT weights"
        )
    if any(k.startswith("visual.trunk.") for k in sd):
        raise CheckpointError(
            f"{source} holds a timm-tower open_clip model (visual.trunk.*), not the OpenAI ViT "
            f"layout X-CLIP extends"
        )
    needed = ("visual.conv1.weight", "visual.positional_embedding")
    if not all(k in sd for k in needed):
        raise CheckpointError(
            f"{source} is not a CLIP ViT state dict in the OpenAI layout: missing "
            f"{[k for k in needed if k not in sd]} (found e.g. {sorted(sd)[:5]})"
        )


def _clean(sd: Mapping[str, torch.Tensor], source: str) -> StateDict:
    sd = {k: v for k, v in sd.items() if k not in JIT_EXTRA_KEYS}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    _check_vit(sd, source)
    return sd


def _parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return {"true": True, "1": True, "false": False, "0": False}.get(value.strip().lower())


def _load_file(path: Path) -> ClipWeights:
    quick_gelu = None
    if path.suffix == ".safetensors":
        sd = read_safetensors(path)
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        quick_gelu = _parse_bool(meta.get("quick_gelu"))
    else:
        sd = extract_state_dict(read_torch_file(path), str(path))
    return ClipWeights(_clean(sd, str(path)), quick_gelu, str(path))


def _open_clip_quick_gelu(open_clip, model_name: str, tag: str) -> bool | None:
    """What activation the ``model_name``/``tag`` weights were trained with, per open_clip's table."""
    base = model_name.removesuffix("-quickgelu")
    for name in (model_name, base):
        cfg = open_clip.get_pretrained_cfg(name, tag)
        if cfg:
            return bool(cfg.get("quick_gelu", False))
    if tag == "openai":
        return True
    return None


def _load_open_clip(spec: str) -> ClipWeights:
    model_name, tag = spec.split("/", 1)
    try:
        import open_clip  # lazy: optional dependency
    except ImportError:
        raise ImportError(
            f"loading CLIP weights {spec!r} by open_clip name needs the optional package "
            f"open_clip_torch (pip install open-clip-torch), or pass a state-dict file instead"
        ) from None
    if model_name not in open_clip.list_models():
        raise InputError(
            f"{model_name!r} is not an open_clip model name (see open_clip.list_models()); "
            f"expected 'MODEL/TAG', e.g. 'ViT-B-32/openai' or 'ViT-B-16/laion2b_s34b_b88k'"
        )
    model_cfg = open_clip.get_model_config(model_name) or {}
    vision = model_cfg.get("vision_cfg", {})
    if isinstance(vision.get("layers"), (list, tuple)) or vision.get("timm_model_name"):
        raise CheckpointError(
            f"open_clip model {model_name!r} is not a CLIP ViT in the OpenAI layout (ResNet or timm "
            f"vision tower); X-CLIP extends ViT-B/32, ViT-B/16, ViT-L/14 or ViT-L/14@336px"
        )
    if model_cfg.get("custom_text") or "hf_model_name" in model_cfg.get("text_cfg", {}):
        raise CheckpointError(
            f"open_clip model {model_name!r} has a custom text tower; X-CLIP needs the OpenAI CLIP "
            f"text transformer"
        )
    quick_gelu = _open_clip_quick_gelu(open_clip, model_name, tag)
    name = model_name
    if not open_clip.get_pretrained_cfg(model_name, tag) and model_name.endswith("-quickgelu"):
        name = model_name.removesuffix("-quickgelu")  # tag registered only on the base name
    model = open_clip.create_model(name, pretrained=tag, device="cpu")
    return ClipWeights(_clean(model.state_dict(), spec), quick_gelu, spec)


def load_clip_weights(source: str | Path | ClipWeights | Mapping[str, torch.Tensor]) -> ClipWeights:
    """Image CLIP weights in the OpenAI layout, ready for :func:`init_from_clip`.

    ``source``: a state-dict file (``.pt``/``.pth``/``.bin``/``.safetensors``), an open_clip training
    checkpoint, an open_clip pretrained name ``"MODEL/TAG"`` (downloads on a connected machine), or
    an in-memory state dict. OpenAI's TorchScript ``.pt`` archives are refused with a pointer to
    ``xclip-video convert-openai``.
    """
    if isinstance(source, ClipWeights):
        return source
    if isinstance(source, Mapping):
        sd = extract_state_dict(source, "state dict")
        return ClipWeights(_clean(sd, "state dict"), None, "state dict")
    path = Path(source)
    if path.exists():
        if path.is_dir():
            raise CheckpointError(f"{path} is a directory; expected a CLIP state-dict file")
        return _load_file(path)
    text = str(source)
    weight_suffixes = {".pt", ".pth", ".bin", ".safetensors"}
    if (
        text.count("/") == 1
        and not text.startswith((".", "/", "~"))
        and path.suffix not in weight_suffixes
    ):
        return _load_open_clip(text)
    raise CheckpointError(
        f"CLIP weights not found: {text!r} is neither an existing file nor an open_clip name "
        f"'MODEL/TAG' (e.g. 'ViT-B-32/openai')"
    )


def _suggest_arch(sd: Mapping[str, torch.Tensor]) -> str:
    conv = sd["visual.conv1.weight"]
    width, patch = conv.shape[0], conv.shape[-1]
    size = math.isqrt(sd["visual.positional_embedding"].shape[0] - 1) * patch
    names = [
        n
        for n in list_models()
        if (c := get_config(n)).vision_width == width
        and c.patch_size == patch
        and c.image_size == size
        and ("text_projection" not in sd or c.embed_dim == sd["text_projection"].shape[1])
    ]
    arch = clip_architecture(sd)
    if names:
        return f"these are {arch} CLIP weights; use a matching architecture: {', '.join(names)}"
    return (
        f"these are {arch} CLIP weights ({size}px, patch {patch}, width {width}); no registered "
        f"architecture matches, build one with xclip.XCLIPConfig / xclip.register_model"
    )


def _show(items: list[str], limit: int = 8) -> str:
    head = ", ".join(items[:limit])
    return head + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def init_from_clip(
    model: nn.Module, clip_sd: ClipWeights | Mapping[str, torch.Tensor]
) -> list[str]:
    """Copy image CLIP weights into an X-CLIP ``model`` (the original's initialisation).

    Every CLIP tensor must exist in ``model`` with the same shape, and the only model keys CLIP does
    not provide must be the new X-CLIP modules (message tokens, MIT, prompt generator, prompt visual
    LN/projection), which keep their X-CLIP initialisation. Anything else raises
    :class:`~xclip.CheckpointError` naming the keys. Returns the newly initialised keys (sorted).
    """
    weights = load_clip_weights(clip_sd)
    sd, source = weights.state_dict, weights.source
    own = model.state_dict()
    unexpected = sorted(set(sd) - set(own))
    missing = sorted(set(own) - set(sd))
    bad_missing = [k for k in missing if not NEW_MODULE_PATTERN.fullmatch(k)]
    shapes = [
        f"{k}: CLIP {tuple(sd[k].shape)} vs X-CLIP {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(sd))
        if sd[k].shape != own[k].shape
    ]
    if unexpected or bad_missing or shapes:
        lines = [f"CLIP weights {source} do not fit this X-CLIP model:"]
        if shapes:
            lines.append(f"  shape mismatches: {_show(shapes)}")
        if unexpected:
            lines.append(f"  CLIP keys the model does not have: {_show(unexpected)}")
        if bad_missing:
            lines.append(
                f"  model keys the CLIP weights lack (not new X-CLIP modules): {_show(bad_missing)}"
            )
        if shapes or unexpected:
            with contextlib.suppress(CheckpointError, KeyError):
                lines.append(f"  {_suggest_arch(sd)}")
        raise CheckpointError("\n".join(lines))
    result = model.load_state_dict(sd, strict=False)
    assert not result.unexpected_keys and sorted(result.missing_keys) == missing
    logger.info(
        "loaded %d CLIP tensors from %s (%s); %d X-CLIP tensors newly initialised",
        len(sd),
        source,
        weights.architecture,
        len(missing),
    )
    logger.debug("newly initialised: %s", missing)
    return missing


def convert_openai_jit(pt_path: str | Path, out_path: str | Path) -> ClipWeights:
    """Convert an OpenAI CLIP TorchScript archive (``clip.load``'s ``ViT-B-32.pt``...) to safetensors.

    ``torch.jit.load`` executes the archive's code: only call this on files you trust (OpenAI's
    downloads). The output is a plain OpenAI-layout state dict (dtypes as stored, usually fp16) with
    metadata ``quick_gelu=true``; :func:`load_clip_weights` reads it without running any code.
    Returns the converted weights.
    """
    pt_path, out_path = Path(pt_path), Path(out_path)
    if not pt_path.is_file():
        raise FileNotFoundError(f"OpenAI CLIP archive not found: {pt_path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
            module = torch.jit.load(str(pt_path), map_location="cpu")
    except (RuntimeError, ValueError) as e:
        first = (
            str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else type(e).__name__
        )
        raise CheckpointError(
            f"{pt_path} is not a TorchScript archive ({first}); a plain state dict needs no "
            f"conversion: pass it directly as clip_weights"
        ) from None
    sd = {k: v.detach().clone() for k, v in module.state_dict().items()}
    sd = _clean(sd, str(pt_path))
    arch = clip_architecture(sd)
    save_safetensors(
        sd,
        out_path,
        metadata={
            "format": "pt",
            "source": "openai-clip-torchscript",
            "architecture": arch,
            "quick_gelu": "true",
        },
    )
    return ClipWeights(sd, True, str(pt_path))
