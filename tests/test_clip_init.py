"""Initialising X-CLIP from image CLIP weights (original-xclip.md §1.7) and the OpenAI converter."""

from __future__ import annotations

import logging
import sys
import warnings

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import xclip
from xclip import CheckpointError
from xclip.checkpoint import read_torch_file
from xclip.convert.clip import (
    NEW_MODULE_PATTERN,
    ClipWeights,
    clip_architecture,
    convert_openai_jit,
    init_from_clip,
    load_clip_weights,
)
from xclip_app.cli import main

TINY = xclip.get_config("xclip_test")


def clip_state_dict(seed: int = 0, **changes) -> dict[str, torch.Tensor]:
    """A tiny image CLIP in the OpenAI layout: X-CLIP without its new modules has exactly those keys."""
    torch.manual_seed(seed)
    cfg = TINY.replace(cross_frame=False, use_mit=False, use_prompts=False, **changes)
    sd = xclip.XCLIP(cfg).state_dict()
    return {k: v.clone() for k, v in sd.items()}


@pytest.fixture(scope="module")
def clip_sd():
    return clip_state_dict()


def expected_new_keys(model: nn.Module) -> list[str]:
    return sorted(k for k in model.state_dict() if NEW_MODULE_PATTERN.fullmatch(k))


def assert_copied(model: nn.Module, sd: dict[str, torch.Tensor]) -> None:
    own = model.state_dict()
    for k, v in sd.items():
        assert torch.equal(own[k], v.to(own[k].dtype)), k


# init_from_clip --------------------------------------------------------------------------------


def test_clip_keys_are_openai_layout(clip_sd):
    assert "visual.transformer.resblocks.0.attn.in_proj_weight" in clip_sd
    assert "text_projection" in clip_sd and "logit_scale" in clip_sd
    assert not any(NEW_MODULE_PATTERN.fullmatch(k) for k in clip_sd)


def test_init_from_clip_copies_everything_and_reports_new_modules(clip_sd):
    torch.manual_seed(1)
    model = xclip.XCLIP(TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = init_from_clip(model, clip_sd)
    assert new == expected_new_keys(model)
    assert set(new) | set(clip_sd) == set(model.state_dict())
    # exactly the X-CLIP modules, every kind of them
    for prefix in ("mit.", "prompts_generator.", "prompts_visual_ln.", "prompts_visual_proj"):
        assert any(k.startswith(prefix) for k in new), prefix
    assert any(".message_fc." in k for k in new)
    assert any(".message_ln." in k for k in new)
    assert any(".message_attn." in k for k in new)
    assert_copied(model, clip_sd)
    # the new modules keep their X-CLIP initialisation
    for k in new:
        assert torch.equal(model.state_dict()[k], before[k]), k
    assert torch.allclose(
        model.prompts_generator.alpha, torch.full_like(model.prompts_generator.alpha, 0.1)
    )


def test_init_from_clip_ablation_model_has_no_new_keys(clip_sd):
    model = xclip.XCLIP(TINY.replace(cross_frame=False, use_mit=False, use_prompts=False))
    assert init_from_clip(model, clip_sd) == []
    assert_copied(model, clip_sd)


def test_missing_clip_key_is_an_error(clip_sd):
    sd = dict(clip_sd)
    del sd["ln_final.weight"]
    del sd["visual.transformer.resblocks.1.mlp.c_fc.bias"]
    with pytest.raises(CheckpointError) as e:
        init_from_clip(xclip.XCLIP(TINY), sd)
    msg = str(e.value)
    assert "ln_final.weight" in msg and "visual.transformer.resblocks.1.mlp.c_fc.bias" in msg
    assert "not new X-CLIP modules" in msg


def test_unexpected_clip_key_is_an_error(clip_sd):
    sd = dict(clip_sd)
    sd["visual.attn_pool.query"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"visual\.attn_pool\.query"):
        init_from_clip(xclip.XCLIP(TINY), sd)


def test_clip_weights_with_xclip_keys_are_rejected(clip_sd):
    # a full X-CLIP checkpoint is not "CLIP weights": its extra keys are named
    full = xclip.XCLIP(TINY).state_dict()
    with pytest.raises(CheckpointError, match="mit.positional_embedding"):
        init_from_clip(xclip.XCLIP(TINY.replace(use_mit=False)), full)


def test_shape_mismatch_names_keys_and_suggests_architecture(clip_sd):
    # CLIP with patch 8 (xclip_test's) into an X-CLIP with patch 16 (like B/16 CLIP into B/32)
    model = xclip.XCLIP(TINY.replace(patch_size=16))
    with pytest.raises(CheckpointError) as e:
        init_from_clip(model, clip_sd)
    msg = str(e.value)
    assert "visual.conv1.weight: CLIP (64, 3, 8, 8) vs X-CLIP (64, 3, 16, 16)" in msg
    assert "visual.positional_embedding: CLIP (17, 64) vs X-CLIP (5, 64)" in msg
    assert "xclip_test" in msg  # the registered architecture these weights fit


def test_shape_mismatch_without_registered_match():
    sd = clip_state_dict(image_size=48, patch_size=16)
    with pytest.raises(CheckpointError, match="no registered architecture matches"):
        init_from_clip(xclip.XCLIP(TINY), sd)


def test_resnet_clip_is_refused(clip_sd):
    sd = {k: v for k, v in clip_sd.items() if not k.startswith("visual.")}
    sd["visual.layer1.0.conv1.weight"] = torch.zeros(4, 4, 1, 1)
    sd["visual.attnpool.positional_embedding"] = torch.zeros(5, 4)
    with pytest.raises(CheckpointError, match="ResNet"):
        load_clip_weights(sd)


def test_jit_extra_entries_and_module_prefix_are_dropped(clip_sd, tmp_path):
    sd = {f"module.{k}": v for k, v in clip_sd.items()}
    sd.update(
        {
            "module.input_resolution": torch.tensor(32),
            "module.context_length": torch.tensor(77),
            "module.vocab_size": torch.tensor(49408),
        }
    )
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": sd, "epoch": 3, "name": "run"}, path)
    w = load_clip_weights(path)
    assert set(w.state_dict) == set(clip_sd)
    assert w.quick_gelu is None
    assert w.architecture == "ViT-w64/8@32px"


def test_clip_architecture_names():
    def fake(width, patch, size):
        grid = size // patch
        return {
            "visual.conv1.weight": torch.empty(width, 3, patch, patch),
            "visual.positional_embedding": torch.empty(grid * grid + 1, width),
        }

    assert clip_architecture(fake(768, 32, 224)) == "ViT-B/32"
    assert clip_architecture(fake(768, 16, 224)) == "ViT-B/16"
    assert clip_architecture(fake(1024, 14, 224)) == "ViT-L/14"
    assert clip_architecture(fake(1024, 14, 336)) == "ViT-L/14@336px"


def test_unknown_source_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="neither an existing file"):
        load_clip_weights(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="directory"):
        load_clip_weights(tmp_path)


def test_open_clip_name_without_open_clip(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(ImportError, match="open_clip_torch"):
        load_clip_weights("ViT-B-32/openai")


# create_model(..., clip_weights=...) end to end ------------------------------------------------


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "open_clip"])
def test_create_model_from_clip_file(clip_sd, tmp_path, fmt):
    if fmt == "pth":
        path = tmp_path / "clip.pth"
        torch.save(clip_sd, path)
    elif fmt == "safetensors":
        path = tmp_path / "clip.safetensors"
        save_file({k: v.contiguous() for k, v in clip_sd.items()}, str(path))
    else:  # open_clip's training checkpoint: {"epoch", "name", "state_dict" (DDP "module." keys), ...}
        path = tmp_path / "epoch_3.pt"
        torch.save(
            {
                "epoch": 3,
                "name": "run",
                "state_dict": {f"module.{k}": v for k, v in clip_sd.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0]}]},
            },
            path,
        )
    model = xclip.create_model("xclip_test", clip_weights=path)
    assert model.cfg == TINY
    assert_copied(model, clip_sd)
    video = torch.randn(1, TINY.num_frames, 3, TINY.image_size, TINY.image_size)
    with torch.no_grad():
        logits = model(video, xclip.tokenize(["a", "b"]))
    assert logits.shape == (1, 2) and torch.isfinite(logits).all()


def test_create_model_rejects_pretrained_and_clip_weights(clip_sd):
    with pytest.raises(ValueError, match="either"):
        xclip.create_model("xclip_test", "kinetics400", clip_weights=clip_sd)


def test_quickgelu_trap_rebuilds_with_gelu(clip_sd, tmp_path, caplog):
    path = tmp_path / "laion.safetensors"
    save_file(
        {k: v.contiguous() for k, v in clip_sd.items()}, str(path), metadata={"quick_gelu": "false"}
    )
    assert load_clip_weights(path).quick_gelu is False
    with caplog.at_level(logging.WARNING, logger="xclip.factory"):
        model = xclip.create_model("xclip_test", clip_weights=path)
    assert model.cfg.quick_gelu is False
    assert isinstance(model.transformer.resblocks[0].mlp.gelu, nn.GELU)
    assert isinstance(model.visual.transformer.resblocks[0].mlp.gelu, nn.GELU)
    assert "exact GELU" in caplog.text
    assert_copied(model, clip_sd)


def test_quickgelu_explicit_override_is_kept_with_warning(clip_sd, caplog):
    weights = ClipWeights(clip_sd, quick_gelu=False, source="laion")
    with caplog.at_level(logging.WARNING, logger="xclip.factory"):
        model = xclip.create_model("xclip_test", clip_weights=weights, quick_gelu=True)
    assert model.cfg.quick_gelu is True
    assert "keeping it" in caplog.text


def test_quickgelu_weights_into_gelu_config_switch_back(clip_sd):
    weights = ClipWeights(clip_sd, quick_gelu=True, source="openai")
    xclip.register_model("xclip_test_gelu_tmp", TINY.replace(quick_gelu=False), overwrite=True)
    try:
        model = xclip.create_model("xclip_test_gelu_tmp", clip_weights=weights)
    finally:
        from xclip import config

        config._ARCHS.pop("xclip_test_gelu_tmp", None)
    assert model.cfg.quick_gelu is True


# OpenAI TorchScript archives -------------------------------------------------------------------


class _Root(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def make_openai_jit_archive(sd: dict[str, torch.Tensor], path) -> None:
    """A real TorchScript archive whose state_dict has OpenAI CLIP's keys (fp16, as OpenAI ships
    them) plus the integer entries ``input_resolution``/``context_length``/``vocab_size``."""
    root = _Root()
    for key, value in sd.items():
        *parents, leaf = key.split(".")
        mod = root
        for p in parents:
            if not hasattr(mod, p):
                mod.add_module(p, nn.Module())
            mod = getattr(mod, p)
        mod.register_parameter(leaf, nn.Parameter(value.half().clone(), requires_grad=False))
    for key, value in (("input_resolution", 32), ("context_length", 77), ("vocab_size", 49408)):
        root.register_buffer(key, torch.tensor(value))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(root).save(str(path))


@pytest.fixture(scope="module")
def jit_archive(clip_sd, tmp_path_factory):
    path = tmp_path_factory.mktemp("openai") / "ViT-tiny.pt"
    make_openai_jit_archive(clip_sd, path)
    return path


def test_read_torch_file_refuses_torchscript(jit_archive):
    with pytest.raises(CheckpointError, match="convert-openai"):
        read_torch_file(jit_archive)
    with pytest.raises(CheckpointError, match="convert-openai"):
        load_clip_weights(jit_archive)


def test_convert_openai_jit(clip_sd, jit_archive, tmp_path):
    out = tmp_path / "clip.safetensors"
    weights = convert_openai_jit(jit_archive, out)
    assert weights.quick_gelu is True
    w = load_clip_weights(out)
    assert w.quick_gelu is True
    assert set(w.state_dict) == set(clip_sd)  # the three integer entries are gone
    for k, v in clip_sd.items():
        assert w.state_dict[k].dtype == torch.float16
        assert torch.equal(w.state_dict[k], v.half()), k
    model = xclip.create_model("xclip_test", clip_weights=out)
    assert model.dtype == torch.float32
    assert_copied(model, {k: v.half() for k, v in clip_sd.items()})


def test_convert_openai_command(clip_sd, jit_archive, tmp_path, capsys):
    out = tmp_path / "out.safetensors"
    assert main(["convert-openai", str(jit_archive), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{len(clip_sd)} tensors" in printed
    assert "ViT-w64/8@32px" in printed
    assert out.is_file()


def test_convert_openai_command_bad_inputs(clip_sd, jit_archive, tmp_path, capsys):
    assert (
        main(["convert-openai", str(tmp_path / "missing.pt"), str(tmp_path / "o.safetensors")]) == 2
    )
    assert "not found" in capsys.readouterr().err
    plain = tmp_path / "plain.pt"
    torch.save(clip_sd, plain)
    assert main(["convert-openai", str(plain), str(tmp_path / "o.safetensors")]) == 2
    assert "not a TorchScript archive" in capsys.readouterr().err
    assert main(["convert-openai", str(jit_archive), str(tmp_path / "o.pth")]) == 2
    assert ".safetensors" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()
