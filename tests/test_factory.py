"""create_model with released-weights tags, offline (download replaced by a local directory)."""

from __future__ import annotations

import dataclasses

import torch

import xclip
import xclip.pretrained as pretrained


def test_pretrained_tag_imposes_original_head_counts(tmp_path, monkeypatch):
    # An HF-format export whose MIT/prompt head counts differ from the architecture's (as the
    # hub's L/14 conversions do): the registered counts are what the original trained with.
    torch.manual_seed(0)
    wrong = xclip.create_model("xclip_test", mit_heads=2, prompt_heads=2)
    xclip.save_model(wrong, tmp_path / "hub", format="hf")
    entry = dataclasses.replace(
        pretrained.get_pretrained("xclip_b32_8f", "kinetics400"), arch="xclip_test"
    )
    monkeypatch.setattr(pretrained, "get_pretrained", lambda arch, tag=None: entry)
    monkeypatch.setattr(
        pretrained, "download_pretrained", lambda e, cache_dir=None: tmp_path / "hub"
    )
    model = xclip.create_model("xclip_test", pretrained="kinetics400")
    assert model.cfg == xclip.get_config("xclip_test")
    assert model.cfg.mit_num_heads == 4 and model.cfg.prompt_num_heads == 4
    assert model.preprocess == entry.preprocess
    for k, t in wrong.state_dict().items():
        assert torch.equal(t, model.state_dict()[k]), k
    # "arch.tag" spelling and load_model("arch.tag") go the same way
    assert xclip.create_model("xclip_test.kinetics400").cfg == model.cfg
    assert xclip.load_model("xclip_test.kinetics400").cfg == model.cfg


def test_convert_command_roundtrip(tmp_path):
    from xclip_app.cli import main

    torch.manual_seed(0)
    model = xclip.create_model("xclip_test")
    xclip.save_model(model, tmp_path / "native")
    assert main(["convert", str(tmp_path / "native"), str(tmp_path / "hf"), "--to", "hf"]) == 0
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "back")]) == 0
    back = xclip.load_model(tmp_path / "back")
    for k, t in model.state_dict().items():
        assert torch.equal(t, back.state_dict()[k]), k
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "x")]) == 2


def test_frame_count_override_carries_into_preprocess(tmp_path, monkeypatch):
    # issue 11 rule 6: create_model(arch, pretrained=tag, num_frames=N) must tell the pipeline
    # to sample N frames, and keep the weights' own mean/std
    torch.manual_seed(0)
    xclip.save_model(xclip.create_model("xclip_test"), tmp_path / "hub", format="hf")
    cfg = xclip.get_config("xclip_test")
    entry = dataclasses.replace(
        pretrained.get_pretrained("xclip_b32_8f", "kinetics400"),
        arch="xclip_test",
        num_frames=cfg.num_frames,
        image_size=cfg.image_size,
    )
    monkeypatch.setattr(pretrained, "get_pretrained", lambda arch, tag=None: entry)
    monkeypatch.setattr(
        pretrained, "download_pretrained", lambda e, cache_dir=None: tmp_path / "hub"
    )
    n = cfg.num_frames * 2
    model = xclip.create_model("xclip_test", pretrained="kinetics400", num_frames=n)
    assert model.cfg.num_frames == n
    assert model.preprocess.num_frames == n
    assert model.preprocess.mean == entry.preprocess.mean == xclip.IMAGENET_MEAN
    loaded = xclip.load_model(tmp_path / "hub", num_frames=n)
    assert loaded.preprocess.num_frames == n
