"""Hugging Face ``transformers`` X-CLIP layout <-> original layout (being written)."""

from __future__ import annotations


def is_hf_config(meta: dict) -> bool:
    return meta.get("model_type") == "xclip"


def is_hf_state_dict(sd) -> bool:
    return any(k.startswith(("text_model.", "vision_model.")) for k in sd)


def config_from_hf(meta):
    raise NotImplementedError


def hf_to_original(sd):
    raise NotImplementedError


def read_hf_weights(path):
    raise NotImplementedError


def save_hf_dir(model, out):
    raise NotImplementedError
