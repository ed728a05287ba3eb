"""Original microsoft/VideoX X-CLIP checkpoints: realistic ``.pth`` files, inference, bad input.

An original-layout state dict is derived from a random ``transformers.XCLIPModel`` with
``hf_to_original`` (the inverse of the upstream conversion), so the HF model is the oracle for the
logits. The ``.pth`` wraps it as ``utils/tools.py::epoch_saving`` does: ``{"model", "optimizer"
(a real AdamW state), "lr_scheduler", "max_accuracy", "epoch", "config" (a real yacs CfgNode)}``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import xclip
from xclip.checkpoint import load_state_dict_strict, read_torch_file
from xclip.convert.hf import hf_to_original, original_to_hf
from xclip.convert.original import infer_config

transformers = pytest.importorskip("transformers")
yacs_config = pytest.importorskip("yacs.config")

ATOL = 1e-4

# A small model whose head counts follow the original width // 64 rule, so that everything is
# inferred from the shapes, as for a released checkpoint.
TEXT = dict(
    vocab_size=49408,
    hidden_size=128,
    intermediate_size=512,
    num_hidden_layers=2,
    num_attention_heads=2,
)
VISION = dict(
    hidden_size=256,
    intermediate_size=1024,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=32,
    patch_size=8,
    num_frames=8,
    mit_hidden_size=128,
    mit_intermediate_size=512,
    mit_num_attention_heads=2,
)
EXPECTED = xclip.XCLIPConfig(
    embed_dim=128,
    image_size=32,
    patch_size=8,
    vision_width=256,
    vision_layers=2,
    num_frames=8,
    text_width=128,
    text_layers=2,
)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def randomize_(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Randomise every parameter (biases, LayerNorms, alpha too) at a sane scale."""
    g = torch.Generator().manual_seed(seed)
    ln = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                continue
            if name.endswith("prompts_generator.alpha"):
                p.copy_(0.1 + 0.4 * torch.rand(p.shape, generator=g))
            elif name in ln:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif name == "prompts_visual_projection":
                p.copy_(torch.randn(p.shape, generator=g) * p.shape[0] ** -0.5)
            elif "embedding" in name and p.ndim != 4:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * p[0].numel() ** -0.5)
    return model


def make_hf(seed: int = 0):
    cfg = transformers.XCLIPConfig(
        text_config=TEXT, vision_config=VISION, projection_dim=128, prompt_num_attention_heads=2
    )
    torch.manual_seed(seed)
    model = transformers.XCLIPModel(cfg).eval()
    model.set_attn_implementation("eager")
    return randomize_(model, seed)


def yacs_config_node(num_frames: int = 8):
    """A frozen, nested yacs CfgNode shaped like the original utils/config.py defaults."""
    CN = yacs_config.CfgNode
    c = CN()
    c.BASE = [""]
    c.DATA = CN()
    c.DATA.ROOT = "/PATH/TO/videos"
    c.DATA.TRAIN_FILE = "labels/train.txt"
    c.DATA.VAL_FILE = "labels/val.txt"
    c.DATA.DATASET = "kinetics400"
    c.DATA.INPUT_SIZE = 224
    c.DATA.NUM_FRAMES = num_frames
    c.DATA.NUM_CLASSES = 400
    c.DATA.LABEL_LIST = "labels/kinetics_400_labels.csv"
    c.MODEL = CN()
    c.MODEL.ARCH = "ViT-B/32"
    c.MODEL.DROP_PATH_RATE = 0.0
    c.MODEL.PRETRAINED = None
    c.MODEL.RESUME = None
    c.MODEL.FIX_TEXT = True
    c.TRAIN = CN()
    c.TRAIN.EPOCHS = 30
    c.TRAIN.WARMUP_EPOCHS = 5
    c.TRAIN.WEIGHT_DECAY = 0.001
    c.TRAIN.LR = 8e-6
    c.TRAIN.BATCH_SIZE = 8
    c.TRAIN.OPT_LEVEL = "O1"
    c.TRAIN.AUTO_RESUME = False
    c.AUG = CN()
    c.AUG.LABEL_SMOOTH = 0.1
    c.AUG.MIXUP = 0.8
    c.TEST = CN()
    c.TEST.NUM_CLIP = 1
    c.TEST.NUM_CROP = 1
    c.OUTPUT = "exp"
    c.SEED = 1024
    c.LOCAL_RANK = 0
    c.freeze()
    return c


def training_checkpoint(
    sd: dict[str, torch.Tensor], cfg: xclip.XCLIPConfig, num_frames: int
) -> dict:
    """``epoch_saving``'s dict, with a real AdamW state after one step over the original's groups."""
    model = xclip.XCLIP(cfg)
    model.load_state_dict(sd)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim == 1 or "positional_embedding" in name else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.001}, {"params": no_decay, "weight_decay": 0.0}],
        lr=8e-6,
        betas=(0.9, 0.98),
        eps=1e-8,
    )
    video = torch.randn(1, cfg.num_frames, 3, cfg.image_size, cfg.image_size)
    model(video, xclip.tokenize(["a", "b"])[:, :4]).sum().backward()
    opt.step()
    scheduler = {  # timm CosineLRScheduler.state_dict(): its __dict__ without the optimizer
        "param_group_field": "lr",
        "base_values": [8e-5, 8e-6],
        "metric": None,
        "t_in_epochs": False,
        "noise_range_t": None,
        "noise_pct": 0.67,
        "noise_std": 1.0,
        "noise_seed": 42,
        "t_initial": 3000,
        "lr_min": 8e-8,
        "warmup_t": 500,
        "warmup_lr_init": 0,
        "warmup_steps": [1.6e-7, 1.6e-8],
        "cycle_limit": 1,
        "k_decay": 1.0,
    }
    return {
        "model": sd,  # the original weights, not the stepped ones
        "optimizer": opt.state_dict(),
        "lr_scheduler": scheduler,
        "max_accuracy": 80.4,
        "epoch": 29,
        "config": yacs_config_node(num_frames),
    }


def make_video(b: int, t: int, size: int = 32, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 3, size, size, generator=g)


@torch.no_grad()
def hf_logits(hf, video, ids):
    return hf(input_ids=ids, pixel_values=video).logits_per_video


@pytest.fixture(scope="module")
def original_pth(tmp_path_factory) -> tuple[Path, object]:
    """(path of a realistic original .pth, the HF oracle with the same weights)."""
    hf = make_hf(seed=5)
    sd = hf_to_original(hf.state_dict())
    path = tmp_path_factory.mktemp("orig") / "ckpt_epoch_29.pth"
    torch.save(training_checkpoint(sd, EXPECTED, 8), path)
    return path, hf


def meta_state_dict(cfg: xclip.XCLIPConfig) -> dict[str, torch.Tensor]:
    """Shapes only (meta tensors): instant even for L/14."""
    with torch.device("meta"):
        return xclip.XCLIP(cfg).state_dict()


# ------------------------------------------------------------------------------------------------
# realistic checkpoints
# ------------------------------------------------------------------------------------------------


def test_yacs_config_is_read_without_importing_or_running_foreign_code(original_pth):
    path, _ = original_pth
    ckpt = read_torch_file(path)
    assert set(ckpt) == {"model", "optimizer", "lr_scheduler", "max_accuracy", "epoch", "config"}
    config = ckpt["config"]
    assert not isinstance(config, yacs_config.CfgNode)  # an inert stand-in, not yacs itself
    assert config["DATA"]["NUM_FRAMES"] == 8 and config["MODEL"]["ARCH"] == "ViT-B/32"
    assert config["BASE"] == [""] and config["MODEL"]["PRETRAINED"] is None
    assert ckpt["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.98)
    assert len(ckpt["optimizer"]["state"]) > 0 and ckpt["epoch"] == 29


def test_original_pth_loads_strictly_and_matches_hf(original_pth):
    path, hf = original_pth
    model = xclip.load_model(path).eval()
    assert model.cfg == EXPECTED  # widths, depths, frames and heads inferred from shapes alone
    video = make_video(2, 8)
    ids = xclip.tokenize(["eating spaghetti", "playing sports", "go shopping"])
    with torch.no_grad():
        ours = model(video, ids)
        feats = model.encode_video(video)
    ref = hf_logits(hf, video, ids)
    d = (ours - ref).abs().max().item()
    print(f"original .pth vs HF: max|logits diff| = {d:.3g}")
    assert d <= ATOL and ref.std() > 0.1
    with torch.no_grad():
        ref_video = hf(input_ids=ids, pixel_values=video).video_embeds
    torch.testing.assert_close(F.normalize(feats.embeds, dim=-1), ref_video, atol=ATOL, rtol=0)


def test_original_pth_with_non_standard_heads_via_overrides(tmp_path):
    """A model trained with other head counts loads when they are given explicitly."""
    hf = transformers.XCLIPModel(
        transformers.XCLIPConfig(
            text_config=TEXT,
            vision_config={**VISION, "mit_num_attention_heads": 8},
            projection_dim=128,
            prompt_num_attention_heads=4,
        )
    ).eval()
    hf.set_attn_implementation("eager")
    randomize_(hf, 9)
    torch.save({"model": hf_to_original(hf.state_dict())}, tmp_path / "w.pth")
    model = xclip.load_model(tmp_path / "w.pth", mit_heads=8, prompt_heads=4).eval()
    video, ids = make_video(1, 8, seed=3), xclip.tokenize(["a", "b c"])
    with torch.no_grad():
        torch.testing.assert_close(model(video, ids), hf_logits(hf, video, ids), atol=ATOL, rtol=0)


def test_infer_config_on_released_key_sets():
    for name in (
        "xclip_b32_8f",
        "xclip_b32_16f",
        "xclip_b16_8f",
        "xclip_b16_32f",
        "xclip_l14_8f",
        "xclip_l14_336_16f",
    ):
        cfg = xclip.get_config(name)
        assert infer_config(meta_state_dict(cfg)) == cfg, name
    # B/32 8f from a real (non-meta) model as well
    sd = xclip.create_model("xclip_b32_8f").state_dict()
    assert infer_config(sd) == xclip.get_config("xclip_b32_8f")
    assert len(sd) == 443
    assert len(original_to_hf(sd, xclip.get_config("xclip_b32_8f"))) == 591


def test_key_counts():
    for name in ("xclip_b32_8f", "xclip_b16_8f", "xclip_b16_32f"):
        assert len(meta_state_dict(xclip.get_config(name))) == 443, name
    l14 = meta_state_dict(xclip.get_config("xclip_l14_8f"))
    assert len(l14) == 683
    hf_l14 = original_to_hf(l14, xclip.get_config("xclip_l14_8f"))
    assert len(hf_l14) == 16 * 12 + 28 * 24 + 16 + 13 * 2 + 21
    assert sorted(hf_to_original(hf_l14)) == sorted(l14)


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------


def test_other_architecture_names_mismatched_keys_and_shapes():
    b16 = meta_state_dict(xclip.get_config("xclip_b16_8f"))
    with torch.device("meta"):
        b32 = xclip.XCLIP(xclip.get_config("xclip_b32_8f"))
    with pytest.raises(xclip.CheckpointError) as e:
        load_state_dict_strict(b32, b16, "b16.pth")
    msg = str(e.value)
    assert "visual.conv1.weight: checkpoint (768, 3, 16, 16) vs model (768, 3, 32, 32)" in msg
    assert "visual.positional_embedding: checkpoint (197, 768) vs model (50, 768)" in msg
    # a missing and an unexpected key are named too
    b16.pop("ln_final.bias")
    b16["head.weight"] = torch.empty(2, device="meta")
    with pytest.raises(xclip.CheckpointError, match=r"missing keys: ln_final\.bias") as e:
        load_state_dict_strict(b32, b16, "b16.pth")
    assert "unexpected keys: head.weight" in str(e.value)


def test_wrong_frame_count_is_a_clear_error(original_pth):
    model = xclip.load_model(original_pth[0]).eval()
    with pytest.raises(ValueError, match="built for 8 frames per video but got 16"):
        model(make_video(1, 16), xclip.tokenize(["a"]))


def test_num_frames_override_interpolates(original_pth):
    path, _ = original_pth
    model8 = xclip.load_model(path).eval()
    model16 = xclip.load_model(path, num_frames=16).eval()
    assert model16.cfg == EXPECTED.replace(num_frames=16)
    assert model16.preprocess.num_frames == 16
    pos8, pos16 = model8.mit.positional_embedding, model16.mit.positional_embedding
    assert pos16.shape == (1, 16, 128)
    torch.testing.assert_close(pos16[:, [0, -1]], pos8[:, [0, -1]])  # align_corners endpoints
    with torch.no_grad():
        logits = model16(make_video(2, 16), xclip.tokenize(["a", "b"]))
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def test_text_file_named_pth(tmp_path):
    p = tmp_path / "weights.pth"
    p.write_text("this is not a checkpoint\n")
    with pytest.raises(xclip.CheckpointError):
        xclip.load_model(p)


def test_truncated_pth(tmp_path, original_pth):
    data = original_pth[0].read_bytes()
    p = tmp_path / "truncated.pth"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(xclip.CheckpointError, match="truncated.pth"):
        xclip.load_model(p)


def test_image_clip_checkpoint_is_not_mistaken_for_xclip(tmp_path):
    sd = xclip.create_model("xclip_test").state_dict()
    clip_like = {k: v for k, v in sd.items() if not k.startswith(("mit.", "prompts_"))}
    clip_like = {k: v for k, v in clip_like.items() if ".message_" not in k}
    torch.save(clip_like, tmp_path / "clip.pth")
    with pytest.raises(xclip.CheckpointError, match="image CLIP checkpoint"):
        xclip.load_model(tmp_path / "clip.pth")


def test_logit_scale_is_kept():
    sd = hf_to_original(make_hf(seed=1).state_dict())
    assert math.isclose(sd["logit_scale"].item(), 2.6592, rel_tol=1e-5)


def test_legacy_non_zip_serialization_with_yacs(tmp_path, original_pth):
    """torch.save(..., _use_new_zipfile_serialization=False): a bare pickle stream."""
    ckpt = read_torch_file(original_pth[0])
    ckpt["config"] = yacs_config_node(8)
    p = tmp_path / "legacy.pth"
    torch.save(ckpt, p, _use_new_zipfile_serialization=False)
    assert xclip.load_model(p).cfg == EXPECTED
