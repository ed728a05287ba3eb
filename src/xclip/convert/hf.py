"""Hugging Face ``transformers`` X-CLIP layout <-> original layout.

A Hugging Face X-CLIP directory (``save_pretrained``) is ``config.json`` (``model_type: "xclip"``)
plus ``model.safetensors`` (or a sharded ``model.safetensors.index.json``, or the older
``pytorch_model.bin``). The weights are the original ones under other names: fused
``nn.MultiheadAttention`` ``in_proj`` tensors are split into ``q_proj``/``k_proj``/``v_proj``, and the
two output projections ``text_projection`` and ``visual.proj`` are stored as transposed ``Linear``
weights. Both directions here are exact, and every key must be accounted for: an unknown or left-over
key is an error, never silently dropped.

Head counts are read from ``config.json`` rather than recomputed: the converted large (L/14)
checkpoints on the hub declare 8 MIT and prompt-generator heads where the original code used
``768 // 64 = 12``, and the file is what those weights are run with in ``transformers``.

Only ``torch`` and ``safetensors`` are used; ``transformers`` is not needed to read or write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from xclip.errors import InputError

from ..checkpoint import (
    CONFIG_FILE,
    CheckpointError,
    extract_state_dict,
    read_json,
    read_safetensors,
    read_torch_file,
    save_json,
    save_safetensors,
)
from ..config import XCLIPConfig

StateDict = Mapping[str, torch.Tensor]

HF_WEIGHTS = "model.safetensors"
HF_WEIGHTS_INDEX = "model.safetensors.index.json"
HF_BIN_WEIGHTS = "pytorch_model.bin"
HF_BIN_WEIGHTS_INDEX = "pytorch_model.bin.index.json"

# ------------------------------------------------------------------------------------------------
# config.json
# ------------------------------------------------------------------------------------------------

# transformers' defaults (XCLIPTextConfig / XCLIPVisionConfig / XCLIPConfig); a config.json may omit
# any key that has its default value (the 2022 hub files are full dumps, but do not rely on it).
_TEXT_DEFAULTS: dict[str, Any] = dict(
    vocab_size=49408,
    hidden_size=512,
    intermediate_size=2048,
    num_hidden_layers=12,
    num_attention_heads=8,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)
_VISION_DEFAULTS: dict[str, Any] = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    mit_hidden_size=512,
    mit_intermediate_size=2048,
    mit_num_hidden_layers=1,
    mit_num_attention_heads=8,
    num_channels=3,
    image_size=224,
    patch_size=32,
    num_frames=8,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    drop_path_rate=0.0,
)
_TOP_DEFAULTS: dict[str, Any] = dict(
    projection_dim=512,
    prompt_layers=2,
    prompt_alpha=0.1,
    prompt_hidden_act="quick_gelu",
    prompt_num_attention_heads=8,
    logit_scale_init_value=2.6592,
)
_LN_EPS = 1e-5  # every LayerNorm of this library (and of the original) uses torch's default


def is_hf_config(meta: dict) -> bool:
    """Whether a ``config.json`` dict is a Hugging Face X-CLIP config."""
    return meta.get("model_type") == "xclip"


def is_hf_state_dict(sd) -> bool:
    """Whether the keys are in the Hugging Face layout (rather than the original one)."""
    return any(k.startswith(("text_model.", "vision_model.")) for k in sd)


def _sub_config(meta: dict, name: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` <- ``meta[name]`` <- legacy ``meta[name + "_dict"]`` (2022 configs carry both;
    transformers lets the ``*_dict`` entry win, so do we)."""
    out = dict(defaults)
    for key in (name, f"{name}_dict"):
        sub = meta.get(key)
        if sub is None:
            continue
        if not isinstance(sub, Mapping):
            raise CheckpointError(f"Hugging Face config: {key!r} must be an object, got {sub!r}")
        out.update(sub)
    return out


def _square(value: Any, key: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise CheckpointError(
                f"Hugging Face config: {key}={value!r} is not square; X-CLIP supports square "
                f"images and patches only"
            )
        value = value[0]
    return int(value)


def _heads_or_default(heads: int, width: int) -> int | None:
    # Store None when the count equals the original width // 64 rule, so that a converted standard
    # checkpoint compares equal to the registered architecture; keep other counts explicit.
    return None if heads == max(1, width // 64) else int(heads)


def config_from_hf(meta: dict) -> XCLIPConfig:
    """The :class:`XCLIPConfig` of a Hugging Face X-CLIP ``config.json``.

    Every head count (text, vision, MIT, prompt generator) is taken from the file. Settings this
    architecture cannot represent raise a :class:`CheckpointError` that names the key.
    """
    if not is_hf_config(meta):
        raise CheckpointError(
            f"not a Hugging Face X-CLIP config: model_type is {meta.get('model_type')!r}, "
            f"expected 'xclip'"
        )
    text = _sub_config(meta, "text_config", _TEXT_DEFAULTS)
    vision = _sub_config(meta, "vision_config", _VISION_DEFAULTS)
    top = {k: meta.get(k, v) for k, v in _TOP_DEFAULTS.items()}
    proj = int(top["projection_dim"])

    def unsupported(key: str, value: Any, why: str) -> CheckpointError:
        return CheckpointError(
            f"Hugging Face config: {key}={value!r} is not supported by xclip ({why})"
        )

    # activations: QuickGELU everywhere in every released checkpoint. Exact GELU is possible in the
    # text and vision towers (cfg.quick_gelu=False), but HF's MIT reuses vision_config.hidden_act
    # while ours always uses QuickGELU, as the original does, and the prompt MLP is QuickGELU too.
    t_act, v_act = text["hidden_act"], vision["hidden_act"]
    for key, act in (("text_config.hidden_act", t_act), ("vision_config.hidden_act", v_act)):
        if act not in ("quick_gelu", "gelu"):
            raise unsupported(key, act, "only 'quick_gelu' and 'gelu' exist in X-CLIP/CLIP")
    if t_act != v_act:
        raise unsupported(
            "text_config.hidden_act", t_act, f"must equal vision_config.hidden_act={v_act!r}"
        )
    if v_act != "quick_gelu":
        raise unsupported(
            "vision_config.hidden_act",
            v_act,
            "transformers' multi-frame integration transformer follows vision_config.hidden_act, "
            "while xclip's is always QuickGELU as in the original X-CLIP",
        )
    if top["prompt_hidden_act"] != "quick_gelu":
        raise unsupported(
            "prompt_hidden_act", top["prompt_hidden_act"], "the prompt generator uses QuickGELU"
        )
    # widths that are tied together in this implementation
    if int(vision["mit_hidden_size"]) != proj:
        raise unsupported(
            "vision_config.mit_hidden_size",
            vision["mit_hidden_size"],
            f"the MIT runs on the projected frame embeddings, so it must equal "
            f"projection_dim={proj}",
        )
    for sub, cfg_name, width_key, ffn_key in (
        (text, "text_config", "hidden_size", "intermediate_size"),
        (vision, "vision_config", "hidden_size", "intermediate_size"),
        (vision, "vision_config", "mit_hidden_size", "mit_intermediate_size"),
    ):
        if int(sub[ffn_key]) != 4 * int(sub[width_key]):
            raise unsupported(
                f"{cfg_name}.{ffn_key}",
                sub[ffn_key],
                f"the MLP width must be 4 x {width_key} = {4 * int(sub[width_key])}",
            )
    for key, value in (
        ("text_config.layer_norm_eps", text["layer_norm_eps"]),
        ("vision_config.layer_norm_eps", vision["layer_norm_eps"]),
    ):
        if abs(float(value) - _LN_EPS) > 1e-12:
            raise unsupported(key, value, f"LayerNorm eps is fixed at {_LN_EPS}")
    if int(vision["num_channels"]) != 3:
        raise unsupported("vision_config.num_channels", vision["num_channels"], "RGB only")

    text_width = int(text["hidden_size"])
    vision_width = int(vision["hidden_size"])
    try:
        return XCLIPConfig(
            embed_dim=proj,
            image_size=_square(vision["image_size"], "vision_config.image_size"),
            patch_size=_square(vision["patch_size"], "vision_config.patch_size"),
            vision_width=vision_width,
            vision_layers=int(vision["num_hidden_layers"]),
            vision_heads=_heads_or_default(int(vision["num_attention_heads"]), vision_width),
            num_frames=int(vision["num_frames"]),
            context_length=int(text["max_position_embeddings"]),
            vocab_size=int(text["vocab_size"]),
            text_width=text_width,
            text_layers=int(text["num_hidden_layers"]),
            text_heads=_heads_or_default(int(text["num_attention_heads"]), text_width),
            mit_layers=int(vision["mit_num_hidden_layers"]),
            mit_heads=_heads_or_default(int(vision["mit_num_attention_heads"]), proj),
            prompt_layers=int(top["prompt_layers"]),
            prompt_heads=_heads_or_default(int(top["prompt_num_attention_heads"]), proj),
            prompt_alpha=float(top["prompt_alpha"]),
            quick_gelu=v_act == "quick_gelu",
            drop_path_rate=float(vision["drop_path_rate"]),
        )
    except ValueError as e:  # e.g. a width not divisible by its head count
        raise CheckpointError(f"Hugging Face config is inconsistent: {e}") from None


def config_to_hf(cfg: XCLIPConfig, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """A ``config.json`` dict for ``transformers.XCLIPModel`` that builds the same architecture.

    Head counts are written explicitly. Ablation variants (no cross-frame communication, MIT or
    prompts) and exact-GELU models have no Hugging Face equivalent and raise ``ValueError``.
    """
    missing = [n for n in ("cross_frame", "use_mit", "use_prompts") if not getattr(cfg, n)]
    if missing:
        raise InputError(
            f"transformers' XCLIPModel always has cross-frame communication, the MIT and the "
            f"prompt generator; this model has {', '.join(f'{n}=False' for n in missing)} and "
            f"cannot be saved in the Hugging Face format (use format='native')"
        )
    if not cfg.quick_gelu:
        raise InputError(
            "quick_gelu=False cannot be saved in the Hugging Face format: transformers' MIT uses "
            "vision_config.hidden_act, xclip's MIT is always QuickGELU (use format='native')"
        )
    act = "quick_gelu"
    text_config = dict(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.text_width,
        intermediate_size=4 * cfg.text_width,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.text_num_heads,
        max_position_embeddings=cfg.context_length,
        hidden_act=act,
        layer_norm_eps=_LN_EPS,
        attention_dropout=0.0,
        initializer_range=0.02,
        initializer_factor=1.0,
        # transformers' legacy value: with eos_token_id == 2 the text is pooled at the highest token
        # id (argmax), exactly as the original and xclip do
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        model_type="xclip_text_model",
    )
    vision_config = dict(
        hidden_size=cfg.vision_width,
        intermediate_size=4 * cfg.vision_width,
        num_hidden_layers=cfg.vision_layers,
        num_attention_heads=cfg.vision_num_heads,
        mit_hidden_size=cfg.embed_dim,
        mit_intermediate_size=4 * cfg.embed_dim,
        mit_num_hidden_layers=cfg.mit_layers,
        mit_num_attention_heads=cfg.mit_num_heads,
        num_channels=3,
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        num_frames=cfg.num_frames,
        hidden_act=act,
        layer_norm_eps=_LN_EPS,
        attention_dropout=0.0,
        initializer_range=0.02,
        initializer_factor=1.0,
        drop_path_rate=cfg.drop_path_rate,
        model_type="xclip_vision_model",
    )
    return dict(
        architectures=["XCLIPModel"],
        model_type="xclip",
        dtype=str(dtype).removeprefix("torch."),
        projection_dim=cfg.embed_dim,
        prompt_layers=cfg.prompt_layers,
        prompt_alpha=cfg.prompt_alpha,
        prompt_hidden_act=act,
        prompt_num_attention_heads=cfg.prompt_num_heads,
        prompt_attention_dropout=0.0,
        prompt_projection_dropout=0.0,
        logit_scale_init_value=2.6592,
        initializer_factor=1.0,
        text_config=text_config,
        vision_config=vision_config,
    )


# ------------------------------------------------------------------------------------------------
# key mapping
# ------------------------------------------------------------------------------------------------

# one-to-one global keys, original -> HF
_GLOBAL: dict[str, str] = {
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
    "logit_scale": "logit_scale",
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.ln_pre.weight": "vision_model.pre_layernorm.weight",
    "visual.ln_pre.bias": "vision_model.pre_layernorm.bias",
    "visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "visual.ln_post.bias": "vision_model.post_layernorm.bias",
    "mit.positional_embedding": "mit.position_embedding",
    "prompts_visual_ln.weight": "prompts_visual_layernorm.weight",
    "prompts_visual_ln.bias": "prompts_visual_layernorm.bias",
    # (D, P) in both layouts: both compute ``x @ W``
    "prompts_visual_proj": "prompts_visual_projection",
    "prompts_generator.norm.weight": "prompts_generator.layernorm.weight",
    "prompts_generator.norm.bias": "prompts_generator.layernorm.bias",
    "prompts_generator.alpha": "prompts_generator.alpha",
}
# (in, out) parameters in the original, ``Linear`` weights (out, in) in HF
_TRANSPOSED: dict[str, str] = {
    "text_projection": "text_projection.weight",
    "visual.proj": "visual_projection.weight",
}
# transformer blocks: (original prefix regex, HF prefix template, has message modules)
_BLOCKS: list[tuple[re.Pattern[str], str, bool]] = [
    (re.compile(r"transformer\.resblocks\.(\d+)\.(.+)"), "text_model.encoder.layers.{}.", False),
    (
        re.compile(r"visual\.transformer\.resblocks\.(\d+)\.(.+)"),
        "vision_model.encoder.layers.{}.",
        True,
    ),
    (re.compile(r"mit\.resblocks\.(\d+)\.(.+)"), "mit.encoder.layers.{}.", False),
]
_BLOCKS_HF: list[tuple[re.Pattern[str], str, bool]] = [
    (re.compile(r"text_model\.encoder\.layers\.(\d+)\.(.+)"), "transformer.resblocks.{}.", False),
    (
        re.compile(r"vision_model\.encoder\.layers\.(\d+)\.(.+)"),
        "visual.transformer.resblocks.{}.",
        True,
    ),
    (re.compile(r"mit\.encoder\.layers\.(\d+)\.(.+)"), "mit.resblocks.{}.", False),
]
# one-to-one module renames inside a block, original -> HF (each takes .weight and .bias)
_BLOCK_PARTS: dict[str, str] = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
    "attn.out_proj": "self_attn.out_proj",
}
_MESSAGE_PARTS: dict[str, str] = {
    "message_fc": "message_fc",
    "message_ln": "message_ln",
    "message_attn.out_proj": "message_attn.out_proj",
}
# fused nn.MultiheadAttention in_proj (original) <-> q/k/v projections (HF)
_FUSED: dict[str, str] = {"attn": "self_attn"}
_MESSAGE_FUSED: dict[str, str] = {"message_attn": "message_attn"}
# prompt-generator decoder layers: identical names in both layouts
_PROMPT_DECODER = re.compile(
    r"prompts_generator\.decoder\.\d+\.(?:cross_attn\.[qkv]_proj\.weight|"
    r"(?:cross_attn\.proj|norm1|norm3|mlp\.0|mlp\.3)\.(?:weight|bias))"
)
# buffers that transformers 4.x saved (int64 arange); not weights, ignored on import
_IGNORED_HF = re.compile(r"(?:text_model|vision_model)\.embeddings\.position_ids")
_QKV = ("q", "k", "v")


def _split_part(rest: str) -> tuple[str, str] | None:
    """``"mlp.c_fc.weight"`` -> ``("mlp.c_fc", "weight")``."""
    module, _, tensor = rest.rpartition(".")
    if not module or tensor not in ("weight", "bias"):
        return None
    return module, tensor


def _unknown_keys_error(direction: str, keys: list[str]) -> CheckpointError:
    shown = ", ".join(keys[:10]) + (f", ... ({len(keys)} in all)" if len(keys) > 10 else "")
    return CheckpointError(
        f"{direction}: {len(keys)} key(s) are not part of the X-CLIP layout and would be lost: "
        f"{shown}"
    )


def original_to_hf(sd: StateDict, cfg: XCLIPConfig | None = None) -> dict[str, torch.Tensor]:
    """Original-layout (= xclip) state dict -> ``transformers.XCLIPModel`` state dict.

    Fused ``in_proj_{weight,bias}`` are split into ``{q,k,v}_proj`` (rows ``[0:D]``, ``[D:2D]``,
    ``[2D:3D]``), ``text_projection``/``visual.proj`` are transposed; any other key raises.
    """
    if cfg is not None:
        missing = [n for n in ("cross_frame", "use_mit", "use_prompts") if not getattr(cfg, n)]
        if missing:
            raise InputError(
                f"the Hugging Face X-CLIP layout needs cross_frame, use_mit and use_prompts; "
                f"this config has {', '.join(f'{n}=False' for n in missing)}"
            )
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        if key in _GLOBAL:
            out[_GLOBAL[key]] = value
            continue
        if key in _TRANSPOSED:
            out[_TRANSPOSED[key]] = value.t().contiguous()
            continue
        if _PROMPT_DECODER.fullmatch(key):
            out[key] = value
            continue
        new = _block_key_to_hf(key, value)
        if new is None:
            unknown.append(key)
        else:
            out.update(new)
    if unknown:
        raise _unknown_keys_error("original -> Hugging Face", sorted(unknown))
    return out


def _block_key_to_hf(key: str, value: torch.Tensor) -> dict[str, torch.Tensor] | None:
    for rx, hf_prefix, has_message in _BLOCKS:
        m = rx.fullmatch(key)
        if m is None:
            continue
        prefix = hf_prefix.format(m.group(1))
        # "attn.in_proj_weight" -> module "attn", tensor "in_proj_weight"
        module, _, tensor = m.group(2).rpartition(".")
        fused = {**_FUSED, **(_MESSAGE_FUSED if has_message else {})}
        if module in fused and tensor in ("in_proj_weight", "in_proj_bias"):
            if value.shape[0] % 3 != 0:
                raise CheckpointError(
                    f"{key}: fused in_proj of shape {tuple(value.shape)} does not split into q/k/v"
                )
            kind = tensor.removeprefix("in_proj_")
            return {
                f"{prefix}{fused[module]}.{name}_proj.{kind}": chunk.contiguous()
                for name, chunk in zip(_QKV, value.chunk(3, dim=0), strict=True)
            }
        renames = {**_BLOCK_PARTS, **(_MESSAGE_PARTS if has_message else {})}
        if module in renames and tensor in ("weight", "bias"):
            return {f"{prefix}{renames[module]}.{tensor}": value}
        return None
    return None


def hf_to_original(sd: StateDict) -> dict[str, torch.Tensor]:
    """``transformers.XCLIPModel`` state dict -> original-layout (= xclip) state dict.

    The exact inverse of :func:`original_to_hf`. ``*.embeddings.position_ids`` buffers (saved by
    transformers 4.x) are ignored; every other key must map, or a :class:`CheckpointError` names it.
    """
    global_rev = {v: k for k, v in _GLOBAL.items()}
    transposed_rev = {v: k for k, v in _TRANSPOSED.items()}
    out: dict[str, torch.Tensor] = {}
    fused: dict[
        str, dict[str, torch.Tensor]
    ] = {}  # original in_proj key -> {"q": .., "k": .., "v": ..}
    unknown: list[str] = []
    for key, value in sd.items():
        if _IGNORED_HF.fullmatch(key):
            continue
        if key in global_rev:
            out[global_rev[key]] = value
            continue
        if key in transposed_rev:
            out[transposed_rev[key]] = value.t().contiguous()
            continue
        if _PROMPT_DECODER.fullmatch(key):
            out[key] = value
            continue
        if not _block_key_to_original(key, value, out, fused):
            unknown.append(key)
    if unknown:
        raise _unknown_keys_error("Hugging Face -> original", sorted(unknown))
    incomplete = []
    for key, parts in fused.items():
        if set(parts) != set(_QKV):
            incomplete.append(f"{key} (has only {'/'.join(sorted(parts))})")
            continue
        out[key] = torch.cat([parts[n] for n in _QKV], dim=0)
    if incomplete:
        raise CheckpointError(
            f"Hugging Face -> original: q/k/v projections are incomplete for {', '.join(incomplete)}"
        )
    return out


def _block_key_to_original(
    key: str,
    value: torch.Tensor,
    out: dict[str, torch.Tensor],
    fused: dict[str, dict[str, torch.Tensor]],
) -> bool:
    for rx, orig_prefix, has_message in _BLOCKS_HF:
        m = rx.fullmatch(key)
        if m is None:
            continue
        prefix = orig_prefix.format(m.group(1))
        parts = _split_part(m.group(2))
        if parts is None:
            return False
        module, tensor = parts
        renames = {
            v: k for k, v in {**_BLOCK_PARTS, **(_MESSAGE_PARTS if has_message else {})}.items()
        }
        if module in renames:
            out[f"{prefix}{renames[module]}.{tensor}"] = value
            return True
        fused_rev = {v: k for k, v in {**_FUSED, **(_MESSAGE_FUSED if has_message else {})}.items()}
        attn, _, proj = module.rpartition(".")
        if attn in fused_rev and proj in ("q_proj", "k_proj", "v_proj"):
            target = f"{prefix}{fused_rev[attn]}.in_proj_{tensor}"
            fused.setdefault(target, {})[proj[0]] = value
            return True
        return False
    return False


# ------------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------------


def _read_index(index_file: Path, read) -> dict[str, torch.Tensor]:
    index = read_json(index_file)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, Mapping) or not weight_map:
        raise CheckpointError(f"{index_file} has no 'weight_map'")
    sd: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = index_file.parent / shard
        if not shard_path.is_file():
            raise CheckpointError(f"{index_file} lists shard {shard}, which is missing")
        sd.update(read(shard_path))
    absent = sorted(set(weight_map) - set(sd))
    if absent:
        raise CheckpointError(
            f"{index_file}: {len(absent)} indexed tensor(s) are missing from the shards, "
            f"e.g. {absent[:5]}"
        )
    return sd


def _read_bin(path: Path) -> dict[str, torch.Tensor]:
    return extract_state_dict(read_torch_file(path), str(path))


def read_hf_weights(path: Path) -> dict[str, torch.Tensor]:
    """The HF-layout state dict of a Hugging Face model directory.

    Reads ``model.safetensors``, a sharded ``model.safetensors.index.json``, or (older uploads)
    ``pytorch_model.bin`` / ``pytorch_model.bin.index.json`` with ``weights_only=True``.
    """
    path = Path(path)
    if (path / HF_WEIGHTS).is_file():
        return read_safetensors(path / HF_WEIGHTS)
    if (path / HF_WEIGHTS_INDEX).is_file():
        return _read_index(path / HF_WEIGHTS_INDEX, read_safetensors)
    if (path / HF_BIN_WEIGHTS).is_file():
        return _read_bin(path / HF_BIN_WEIGHTS)
    if (path / HF_BIN_WEIGHTS_INDEX).is_file():
        return _read_index(path / HF_BIN_WEIGHTS_INDEX, _read_bin)
    present = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    hint = (
        " (only TensorFlow/Flax weights: load them in transformers and save_pretrained with "
        "PyTorch first)"
        if any(n in ("tf_model.h5", "flax_model.msgpack") for n in present)
        else ""
    )
    raise CheckpointError(
        f"{path} has a Hugging Face X-CLIP {CONFIG_FILE} but no weights: expected "
        f"{HF_WEIGHTS}, {HF_WEIGHTS_INDEX}, {HF_BIN_WEIGHTS} or {HF_BIN_WEIGHTS_INDEX}; "
        f"found {present[:10]}{hint}"
    )


def save_hf_dir(model, out: Path) -> None:
    """Write ``config.json`` + ``model.safetensors`` that ``transformers.XCLIPModel.from_pretrained``
    loads with no missing or unexpected keys. Each file is written atomically (weights first)."""
    out = Path(out)
    cfg: XCLIPConfig = model.cfg
    meta = config_to_hf(cfg, dtype=model.dtype)
    sd = original_to_hf(model.state_dict(), cfg)
    save_safetensors(sd, out / HF_WEIGHTS, metadata={"format": "pt"})
    save_json(meta, out / CONFIG_FILE)
