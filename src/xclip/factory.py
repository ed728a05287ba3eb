"""Building, loading and saving models: ``create_model``, ``load_model``, ``save_model``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from xclip.errors import InputError

from . import ownership
from . import pretrained as pretrained_weights
from .atomic import atomic_dir
from .checkpoint import (
    CONFIG_FILE,
    NATIVE_FORMAT,
    NATIVE_FORMAT_VERSION,
    NATIVE_WEIGHTS,
    CheckpointError,
    extract_state_dict,
    load_state_dict_strict,
    read_json,
    read_safetensors,
    read_torch_file,
    save_json,
    save_safetensors,
)
from .config import PreprocessConfig, XCLIPConfig, get_config, list_models, registered_name
from .convert import hf as hf_convert
from .convert.clip import init_from_clip, load_clip_weights
from .convert.original import infer_config, interpolate_frames, interpolate_image_size
from .model import XCLIP

logger = logging.getLogger(__name__)

# What a saved model folder may hold (native or Hugging Face); save_model replaces such a folder
# whole and refuses any other, so that it never deletes a user's files.
MODEL_FOLDER_FILES = frozenset(
    {
        CONFIG_FILE,
        NATIVE_WEIGHTS,
        hf_convert.HF_WEIGHTS,
        hf_convert.HF_WEIGHTS_INDEX,
        hf_convert.HF_BIN_WEIGHTS,
        hf_convert.HF_BIN_WEIGHTS_INDEX,
    }
)


def create_model(
    name: str,
    pretrained: str | None = None,
    *,
    clip_weights: str | Path | None = None,
    attn_impl: str = "sdpa",
    cache_dir: str | Path | None = None,
    **overrides: Any,
) -> XCLIP:
    """Build a registered architecture.

    Args:
        name: an architecture from :func:`list_models` (``"xclip_b32_8f"``), or ``"arch.tag"``.
        pretrained: a released-weights tag of that architecture (see ``xclip.list_pretrained()``),
            downloaded and cached on first use.
        clip_weights: image CLIP weights to start from (the paper's initialisation): a state-dict
            file in the OpenAI layout, an open_clip checkpoint, or an open_clip pretrained name.
            Only the new X-CLIP modules are left at their initialisation.
        overrides: :class:`XCLIPConfig` fields to change (e.g. ``num_frames=16``,
            ``drop_path_rate=0.1``, ``use_prompts=False``).
    """
    if "." in name and pretrained is None:
        name, pretrained = name.split(".", 1)
    cfg = get_config(name)
    if pretrained is not None:
        if clip_weights is not None:
            raise InputError("pass either pretrained= or clip_weights=, not both")
        entry = pretrained_weights.get_pretrained(name, pretrained)
        path = pretrained_weights.download_pretrained(entry, cache_dir=cache_dir)
        # Released weights were trained by the original code, whose MIT and prompt generator use
        # embed_dim // 64 heads. The Hugging Face conversions of the L/14 models record 8 heads
        # (a conversion-script omission); head counts change no tensor shape, so the registered
        # architecture's counts are imposed here to reproduce the original model.
        heads = {"mit_heads": cfg.mit_heads, "prompt_heads": cfg.prompt_heads}
        model = load_model(path, attn_impl=attn_impl, **{**heads, **overrides})
        # overrides such as num_frames change what the model takes; the weights' mean/std stay
        model.preprocess = entry.preprocess.fit_to(model.cfg) if overrides else entry.preprocess
        if not overrides and model.cfg != cfg:
            raise CheckpointError(
                f"downloaded weights {path} build {model.cfg}, not the registered {name!r}"
            )
        return model
    if overrides:
        cfg = cfg.replace(**overrides)
    if clip_weights is None:
        return XCLIP(cfg).set_attn_impl(attn_impl)
    weights = load_clip_weights(clip_weights)
    # The QuickGELU trap: OpenAI CLIP weights need QuickGELU, most LAION open_clip weights need
    # exact GELU; the wrong activation silently degrades the features.
    if weights.quick_gelu is not None and weights.quick_gelu != cfg.quick_gelu:
        if "quick_gelu" in overrides:
            logger.warning(
                "CLIP weights %s were trained with %s but quick_gelu=%s was requested; keeping it",
                weights.source,
                "QuickGELU" if weights.quick_gelu else "exact GELU (nn.GELU)",
                cfg.quick_gelu,
            )
        else:
            logger.warning(
                "CLIP weights %s were trained with %s; building %s with quick_gelu=%s",
                weights.source,
                "QuickGELU" if weights.quick_gelu else "exact GELU (nn.GELU)",
                name,
                weights.quick_gelu,
            )
            cfg = cfg.replace(quick_gelu=weights.quick_gelu)
    model = XCLIP(cfg)
    init_from_clip(model, weights)
    return model.set_attn_impl(attn_impl)


def _read_any(
    path: Path,
) -> tuple[dict[str, torch.Tensor], XCLIPConfig | None, PreprocessConfig | None]:
    """(original-layout state dict, config if stored, preprocess if stored) from any format."""
    if path.is_dir():
        cfg_file = path / CONFIG_FILE
        if not cfg_file.is_file():
            raise CheckpointError(
                f"{path} is a directory without {CONFIG_FILE}; expected an xclip model directory "
                f"(xclip.save_model) or a Hugging Face X-CLIP directory (save_pretrained)"
            )
        meta = read_json(cfg_file)
        if meta.get("format") == NATIVE_FORMAT:
            version = meta.get("format_version", 1)
            if version > NATIVE_FORMAT_VERSION:
                raise CheckpointError(
                    f"{path} was written by a newer xclip (format {version}); upgrade xclip"
                )
            sd = read_safetensors(path / NATIVE_WEIGHTS)
            return (
                sd,
                XCLIPConfig.from_dict(meta["config"]),
                PreprocessConfig.from_dict(meta["preprocess"]) if "preprocess" in meta else None,
            )
        if hf_convert.is_hf_config(meta):
            cfg = hf_convert.config_from_hf(meta)
            return hf_convert.hf_to_original(hf_convert.read_hf_weights(path)), cfg, None
        raise CheckpointError(
            f"{cfg_file} is neither an xclip config (format: {NATIVE_FORMAT!r}) nor a Hugging Face "
            f"X-CLIP config (model_type: 'xclip'); got keys {sorted(meta)[:8]}"
        )
    if not path.exists():
        raise CheckpointError(f"model path not found: {path}")
    if path.suffix == ".safetensors":
        sd = read_safetensors(path)
    else:
        sd = extract_state_dict(read_torch_file(path), str(path))
    if hf_convert.is_hf_state_dict(sd):
        raise CheckpointError(
            f"{path} holds Hugging Face X-CLIP keys; load the whole directory (with its "
            f"config.json) instead: xclip.load_model('{path.parent}')"
        )
    return sd, None, None


def load_model(
    path: str | Path,
    *,
    num_frames: int | None = None,
    image_size: int | None = None,
    attn_impl: str = "sdpa",
    **overrides: Any,
) -> XCLIP:
    """Load any supported checkpoint into an :class:`XCLIP`, strictly.

    Supported: an xclip model directory (:func:`save_model`), a Hugging Face X-CLIP directory
    (``config.json`` + ``model.safetensors``/``pytorch_model.bin``), an original X-CLIP ``.pth``
    (``{"model": state_dict, ...}``), or a bare original-layout state dict (``.pth``/``.safetensors``).
    The architecture is read from the config or inferred from the tensor shapes.

    ``num_frames``/``image_size`` explicitly adapt a checkpoint to another frame count / input size
    by interpolating the temporal / spatial position embeddings (accuracy changes until fine-tuned).
    ``overrides`` set other :class:`XCLIPConfig` fields, e.g. head counts of a non-standard model.
    """
    path = Path(path)
    if not path.exists() and "/" not in str(path) and "." in path.name:
        arch, tag = path.name.split(".", 1)
        if arch in list_models():
            return create_model(arch, tag, attn_impl=attn_impl)
    sd, cfg, preprocess = _read_any(path)
    if cfg is None:
        try:
            cfg = infer_config(sd)
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from None
        if not cfg.cross_frame and not cfg.use_mit and "visual.proj" in sd:
            raise CheckpointError(
                f"{path} is an image CLIP checkpoint, not X-CLIP. Start a new X-CLIP from it with "
                f"xclip.create_model(ARCH, clip_weights='{path}')"
            )
    if overrides:
        cfg = cfg.replace(**overrides)
    if num_frames is not None and num_frames != cfg.num_frames:
        logger.warning(
            "interpolating the temporal position embedding of %s from %d to %d frames",
            path,
            cfg.num_frames,
            num_frames,
        )
        sd = interpolate_frames(sd, num_frames)
        cfg = cfg.replace(num_frames=num_frames)
    if image_size is not None and image_size != cfg.image_size:
        logger.warning(
            "interpolating the spatial position embedding of %s from %d to %d px",
            path,
            cfg.image_size,
            image_size,
        )
        sd = interpolate_image_size(sd, image_size, cfg.patch_size)
        cfg = cfg.replace(image_size=image_size)
    model = XCLIP(cfg)
    load_state_dict_strict(model, sd, str(path))
    if preprocess is not None:
        model.preprocess = preprocess.fit_to(cfg)
    return model.set_attn_impl(attn_impl)


def save_model(
    model: XCLIP, out_dir: str | Path, format: str = "native", *, overwrite: bool = True
) -> Path:
    """Save ``model`` to ``out_dir``: ``"native"`` (xclip ``config.json`` + ``model.safetensors`` in
    the original key layout) or ``"hf"`` (a directory ``transformers.XCLIPModel.from_pretrained``
    reads). Returns ``out_dir``.

    The folder is written as a unit of kind ``"model"`` (a temporary folder renamed into place,
    with its manifest, :mod:`xclip.ownership`): an interrupted save leaves the previous model,
    never a mix. An existing model folder xclip wrote is replaced, or refused with
    ``overwrite=False`` (``FileExistsError``); anything else (a folder holding other files, a
    model folder a user edited, a model copied in by hand) is always refused, so that saving
    never deletes a file xclip did not write.
    """
    if format not in ("native", "hf"):
        raise InputError(f"format must be 'native' or 'hf', got {format!r}")
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise InputError(f"{out} exists and is not a folder; save the model into a folder")
        other = sorted(
            p.name
            for p in out.iterdir()
            if p.name not in MODEL_FOLDER_FILES and not ownership.internal_name(p.name)
        )
        if other:
            shown = ", ".join(other[:5]) + (" ..." if len(other) > 5 else "")
            raise InputError(
                f"{out} holds other files ({shown}); save the model into a new or empty folder"
            )

    def fill(tmp: Path) -> None:
        if format == "hf":
            hf_convert.save_hf_dir(model, tmp)
            return
        save_safetensors(model.state_dict(), tmp / NATIVE_WEIGHTS, metadata={"format": "pt"})
        save_json(
            {
                "format": NATIVE_FORMAT,
                "format_version": NATIVE_FORMAT_VERSION,
                "architecture": registered_name(model.cfg),
                "config": model.cfg.to_dict(),
                "preprocess": model.preprocess.to_dict(),
            },
            tmp / CONFIG_FILE,
        )

    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        out.rmdir()  # an empty folder made for the model holds nothing to keep or refuse
    return atomic_dir(out, fill, overwrite=overwrite, kind="model")
