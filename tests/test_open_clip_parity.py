"""Our CLIP towers equal open_clip's with the same (random) weights, and the QuickGELU trap."""

from __future__ import annotations

import logging

import pytest
import torch

import xclip
from xclip.convert.clip import (
    NEW_MODULE_PATTERN,
    ClipWeights,
    _open_clip_quick_gelu,
    init_from_clip,
    load_clip_weights,
)

open_clip = pytest.importorskip("open_clip")
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg  # noqa: E402

TINY = xclip.get_config("xclip_test")  # embed 32, 32 px, patch 8, widths 64, 2 layers, 4 heads
TEXTS = [
    "a photo of a cat",
    "ApplyEyeMakeup",
    "eating spaghetti",
    "",
    "playing   sports, outdoors!!",
    "x" * 400,
]


def tiny_open_clip(quick_gelu: bool, seed: int = 0) -> CLIP:
    torch.manual_seed(seed)
    model = CLIP(
        TINY.embed_dim,
        vision_cfg=CLIPVisionCfg(
            layers=TINY.vision_layers,
            width=TINY.vision_width,
            head_width=TINY.vision_width // TINY.vision_num_heads,
            patch_size=TINY.patch_size,
            image_size=TINY.image_size,
        ),
        text_cfg=CLIPTextCfg(
            context_length=TINY.context_length,
            vocab_size=TINY.vocab_size,
            width=TINY.text_width,
            heads=TINY.text_num_heads,
            layers=TINY.text_layers,
        ),
        quick_gelu=quick_gelu,
    ).eval()
    # open_clip zero-initialises some tensors; randomise everything so parity means something
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def xclip_from(oc: CLIP, quick_gelu: bool, **changes) -> xclip.XCLIP:
    model = xclip.XCLIP(TINY.replace(quick_gelu=quick_gelu, **changes)).eval()
    init_from_clip(model, oc.state_dict())
    return model


@pytest.mark.parametrize("quick_gelu", [True, False], ids=["quickgelu", "gelu"])
def test_text_tower_matches_open_clip(quick_gelu):
    oc = tiny_open_clip(quick_gelu)
    ours = xclip_from(oc, quick_gelu)
    tokens = xclip.tokenize(TEXTS)
    assert torch.equal(tokens, open_clip.get_tokenizer("ViT-B-32")(TEXTS))
    with torch.no_grad():
        a, b = ours.encode_text(tokens), oc.encode_text(tokens)
    assert (a - b).abs().max().item() <= 1e-5


@pytest.mark.parametrize("quick_gelu", [True, False], ids=["quickgelu", "gelu"])
def test_image_tower_matches_open_clip_per_frame(quick_gelu):
    oc = tiny_open_clip(quick_gelu)
    # without cross-frame communication, our vision blocks are plain CLIP blocks
    ours = xclip_from(oc, quick_gelu, cross_frame=False)
    torch.manual_seed(1)
    b, t = 2, TINY.num_frames
    frames = torch.randn(b * t, 3, TINY.image_size, TINY.image_size)
    with torch.no_grad():
        a = ours.visual(frames, t)[0]
        ref = oc.encode_image(frames)
    assert (a - ref).abs().max().item() <= 1e-5


def test_wrong_activation_is_measurably_different():
    """Why the QuickGELU trap matters: same weights, other activation, different features."""
    oc = tiny_open_clip(quick_gelu=True)
    wrong = xclip_from(oc, quick_gelu=False)
    tokens = xclip.tokenize(TEXTS[:3])
    with torch.no_grad():
        diff = (wrong.encode_text(tokens) - oc.encode_text(tokens)).abs().max().item()
    assert diff > 1e-4


def test_open_clip_tags_quick_gelu_table():
    assert _open_clip_quick_gelu(open_clip, "ViT-B-32", "openai") is True
    assert _open_clip_quick_gelu(open_clip, "ViT-B-32-quickgelu", "openai") is True
    assert _open_clip_quick_gelu(open_clip, "ViT-B-32-quickgelu", "laion400m_e32") is True
    assert _open_clip_quick_gelu(open_clip, "ViT-B-32", "laion2b_s34b_b79k") is False
    assert _open_clip_quick_gelu(open_clip, "ViT-B-16", "laion400m_e32") is False
    # not registered under the -quickgelu name: the base name's table entry is the truth
    assert _open_clip_quick_gelu(open_clip, "ViT-B-16-quickgelu", "laion400m_e32") is False


@pytest.fixture
def offline_open_clip(monkeypatch):
    """open_clip.create_model that builds the tiny model instead of downloading weights."""
    calls = []

    def fake_create_model(name, pretrained=None, **kwargs):
        calls.append((name, pretrained))
        quick = name.endswith("-quickgelu") or pretrained == "openai"
        return tiny_open_clip(quick_gelu=quick)

    monkeypatch.setattr(open_clip, "create_model", fake_create_model)
    return calls


def test_open_clip_name_openai_is_quickgelu(offline_open_clip):
    w = load_clip_weights("ViT-B-32/openai")
    assert w.quick_gelu is True and w.source == "ViT-B-32/openai"
    assert offline_open_clip == [("ViT-B-32", "openai")]
    model = xclip.create_model("xclip_test", clip_weights="ViT-B-32/openai")
    assert model.cfg.quick_gelu is True


def test_open_clip_name_laion_is_gelu(offline_open_clip, caplog):
    with caplog.at_level(logging.WARNING, logger="xclip.factory"):
        model = xclip.create_model("xclip_test", clip_weights="ViT-B-32/laion2b_s34b_b79k")
    assert model.cfg.quick_gelu is False
    assert "exact GELU" in caplog.text
    # and the towers then match the GELU open_clip model
    oc = tiny_open_clip(quick_gelu=False)
    tokens = xclip.tokenize(TEXTS[:3])
    with torch.no_grad():
        assert (model.eval().encode_text(tokens) - oc.encode_text(tokens)).abs().max() <= 1e-5


def test_open_clip_quickgelu_name_falls_back_to_base_tag(offline_open_clip):
    w = load_clip_weights("ViT-B-16-quickgelu/laion400m_e32")
    assert offline_open_clip == [("ViT-B-16", "laion400m_e32")]
    assert w.quick_gelu is False  # open_clip's table: these weights were trained with nn.GELU


def test_open_clip_name_errors():
    with pytest.raises(xclip.CheckpointError, match="ResNet"):
        load_clip_weights("RN50/openai")
    with pytest.raises(ValueError, match="not an open_clip model name"):
        load_clip_weights("ViT-X-99/openai")


@pytest.mark.slow
def test_full_size_b32_quickgelu_into_xclip_b32_8f():
    oc = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None).eval()
    sd = oc.state_dict()
    model = xclip.create_model("xclip_b32_8f", clip_weights=ClipWeights(sd, True, "b32")).eval()
    new = init_from_clip(model, sd)
    assert new == sorted(k for k in model.state_dict() if NEW_MODULE_PATTERN.fullmatch(k))
    assert set(new) == set(model.state_dict()) - set(sd)
    n_message = sum(".message_" in k for k in new)
    assert n_message == 12 * 8  # message_fc (2) + message_ln (2) + message_attn (4) per block
    assert len(sd) + len(new) == 443  # the original's key count for B models
    tokens = xclip.tokenize(TEXTS)
    with torch.no_grad():
        assert (model.encode_text(tokens) - oc.encode_text(tokens)).abs().max() <= 1e-5


@pytest.mark.slow
def test_full_size_quickgelu_trap_plain_b32():
    oc = open_clip.create_model("ViT-B-32", pretrained=None).eval()  # nn.GELU
    assert open_clip.get_model_config("ViT-B-32").get("quick_gelu", False) is False
    weights = ClipWeights(oc.state_dict(), quick_gelu=False, source="ViT-B-32/laion")
    model = xclip.create_model(
        "xclip_b32_8f", clip_weights=weights, cross_frame=False, use_mit=False, use_prompts=False
    ).eval()
    assert model.cfg.quick_gelu is False
    torch.manual_seed(0)
    frames = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (model.visual(frames, 2)[0] - oc.encode_image(frames)).abs().max() <= 1e-4
