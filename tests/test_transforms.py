"""Spatial transforms: MultiScaleCrop arithmetic, shared per-clip decisions, eval crops."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from xclip.config import PreprocessConfig
from xclip.data.transforms import (
    EvalTransform,
    TrainTransform,
    multiscale_crop_box,
    rgb_to_grayscale,
    short_side_size,
    three_crop_boxes,
)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def ref_multiscale(img_h, img_w, input_size, pick_size, pick_offset):
    """The original MultiScaleCrop.__call__ (random_crop=False, 5 fixed crops, gap 1)."""
    base = min(img_h, img_w)
    crop_sizes = [int(base * s) for s in (1, 0.875, 0.75, 0.66)]
    cands = []
    for i, h in enumerate(crop_sizes):
        for j, w in enumerate(crop_sizes):
            if abs(i - j) <= 1:
                cands.append([w, h])
    crop_size = pick_size(cands)
    for i in range(2):
        if abs(crop_size[i] - input_size) < 3:
            crop_size[i] = input_size
    cw, ch = crop_size
    ws, hs = (img_w - cw) // 4, (img_h - ch) // 4
    offs = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]
    x, y = pick_offset(offs)
    return x, y, cw, ch


@pytest.mark.parametrize("hw", [(256, 341), (256, 256), (455, 256), (384, 512)])
def test_multiscale_crop_box_matches_original(hw):
    h, w = hw
    t = TrainTransform(224)
    assert len(t.candidates) == 10
    for ci, cand in enumerate(t.candidates):
        for pos in range(5):
            got = multiscale_crop_box(h, w, 224, cand, pos)
            want = ref_multiscale(h, w, 224, lambda c, ci=ci: list(c[ci]), lambda o, p=pos: o[p])
            assert got == want


def test_multiscale_snapping():
    # base 256 -> sizes 256, 224, 192, 168; 224 is exact; base 257 -> 224.875*... int -> 224
    assert multiscale_crop_box(256, 341, 224, (1, 1), 0)[2:] == (224, 224)
    # base 258: int(258*.875)=225 snaps to 224
    assert multiscale_crop_box(258, 400, 224, (1, 1), 4)[2:] == (224, 224)
    # 192 does not snap
    assert multiscale_crop_box(256, 341, 224, (2, 1), 0)[2:] == (224, 192)


def test_short_side_size_rounds_like_mmcv():
    assert short_side_size(240, 320, 256) == (256, 341)  # 341.33
    assert short_side_size(320, 240, 256) == (341, 256)
    assert short_side_size(360, 640, 256) == (256, 455)  # 455.1


def clip(t=6, h=60, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, 3, h, w), dtype=torch.uint8, generator=g)


def test_train_shapes_and_types():
    t = TrainTransform(32)
    out = t(clip(), torch.Generator().manual_seed(0))
    assert out.shape == (1, 6, 3, 32, 32) and out.dtype == torch.float32
    # THWC numpy input
    out2 = t(clip().permute(0, 2, 3, 1).numpy(), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, out2)


def test_train_same_crop_and_flip_across_frames():
    # identical frames stay identical when no jitter is applied (crop/flip/gray shared)
    frame = clip(1)[0]
    frames = frame.expand(5, -1, -1, -1).contiguous()
    t = TrainTransform(32, jitter_p=0.0)
    for seed in range(10):
        out = t(frames, torch.Generator().manual_seed(seed))[0]
        for k in range(1, 5):
            torch.testing.assert_close(out[k], out[0])


def test_flip_happens_for_whole_clip():
    t = TrainTransform(32, jitter_p=0.0, grayscale_p=0.0, flip_p=1.0, scales=(1.0,))
    t0 = TrainTransform(32, jitter_p=0.0, grayscale_p=0.0, flip_p=0.0, scales=(1.0,))
    x = clip(3, 32, 32)
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    torch.testing.assert_close(t(x, g()), t0(x, g()).flip(-1))


def test_per_frame_jitter_differs_across_frames_and_per_clip_option():
    frame = clip(1)[0]
    frames = frame.expand(6, -1, -1, -1).contiguous()
    per_frame = TrainTransform(32, jitter_p=1.0, grayscale_p=0.0)
    out = per_frame(frames, torch.Generator().manual_seed(0))[0]
    assert not torch.allclose(out[0], out[1])
    params = per_frame.sample_params(6, 60, 80, torch.Generator().manual_seed(0))
    assert params.jitter is not None and len(params.jitter) == 6
    assert len({p.brightness for p in params.jitter}) == 6
    per_clip = TrainTransform(32, jitter_p=1.0, grayscale_p=0.0, per_frame_jitter=False)
    out = per_clip(frames, torch.Generator().manual_seed(0))[0]
    torch.testing.assert_close(out[0], out[5])


def test_jitter_probability_and_factor_ranges():
    t = TrainTransform(32)
    hits = 0
    for seed in range(400):
        p = t.sample_params(2, 60, 80, torch.Generator().manual_seed(seed))
        if p.jitter is not None:
            hits += 1
            for j in p.jitter:
                assert 0.6 <= j.brightness <= 1.4 and 0.6 <= j.contrast <= 1.4
                assert 0.8 <= j.saturation <= 1.2 and -0.1 <= j.hue <= 0.1
                assert sorted(j.order) == [0, 1, 2, 3]
    assert 0.72 < hits / 400 < 0.88


def test_grayscale_really_happens():
    t = TrainTransform(32, jitter_p=0.0, grayscale_p=1.0)
    out = t(clip(), torch.Generator().manual_seed(0))[0]
    # undo the normalisation: back on the 0-255 scale, R == G == B
    m = torch.tensor(MEAN).view(3, 1, 1) * 255
    s = torch.tensor(STD).view(3, 1, 1) * 255
    raw = out * s + m
    torch.testing.assert_close(raw[:, 0], raw[:, 1], atol=1e-3, rtol=0)
    torch.testing.assert_close(raw[:, 1], raw[:, 2], atol=1e-3, rtol=0)
    # probability per clip ~0.2, one decision for all frames
    t2 = TrainTransform(32)
    rate = np.mean(
        [
            t2.sample_params(4, 60, 80, torch.Generator().manual_seed(s)).grayscale
            for s in range(500)
        ]
    )
    assert 0.14 < rate < 0.26


def test_rgb_to_grayscale_matches_pil():
    PIL = pytest.importorskip("PIL.Image")
    x = clip(1, 17, 23)[0]
    ours = rgb_to_grayscale(x)
    pil = np.asarray(PIL.fromarray(x.permute(1, 2, 0).numpy()).convert("L"))
    assert (ours[0] == ours[1]).all() and (ours[1] == ours[2]).all()
    np.testing.assert_array_equal(ours[0].numpy(), pil)


def test_normalisation_values():
    x = torch.full((2, 3, 40, 40), 255, dtype=torch.uint8)
    out = EvalTransform(32, MEAN, STD, resize_short=40)(x)
    want = torch.tensor([(1 - m) / s for m, s in zip(MEAN, STD, strict=True)])
    torch.testing.assert_close(out[0, 0, :, 5, 5], want)


def test_eval_center_crop_single_view():
    cfg = PreprocessConfig(num_frames=4, image_size=32)
    t = EvalTransform.from_preprocess(cfg)
    assert t.resize_short == 36
    x = clip(4, 48, 64)
    out = t(x)
    assert out.shape == (1, 4, 3, 32, 32)
    # 2 temporal clips -> 2 views
    assert t(torch.stack([x, x])).shape == (2, 4, 3, 32, 32)


def test_three_crop_positions_and_order():
    assert three_crop_boxes(224, 298, 224) == [(0, 0), (74, 0), (37, 0)]
    assert three_crop_boxes(298, 224, 224) == [(0, 0), (0, 74), (0, 37)]
    # frames whose columns encode x: resize keeps height = size, so crops are exact slices
    size, w = 16, 40
    cols = torch.arange(w, dtype=torch.uint8).view(1, 1, 1, w).expand(2, 3, size, w)
    t = EvalTransform(size, (0, 0, 0), (1 / 255, 1 / 255, 1 / 255), num_crops=3)
    c0, c1 = cols.contiguous(), (cols + 100).contiguous()
    out = t(torch.stack([c0, c1]))  # 2 temporal clips x 3 crops
    assert out.shape == (6, 2, 3, size, size)
    starts = [int(out[v, 0, 0, 0, 0]) for v in range(6)]
    # crop-major: [crop0 clip0, crop0 clip1, crop1 clip0, ...]; crops left, right, middle
    assert starts == [0, 100, 24, 124, 12, 112]


def test_eval_three_crop_portrait():
    t = EvalTransform(16, num_crops=3)
    out = t(clip(2, 40, 20))
    assert out.shape == (3, 2, 3, 16, 16)


def test_train_deterministic_given_generator():
    t = TrainTransform(32)
    x = clip()
    a = t(x, torch.Generator().manual_seed(7))
    b = t(x, torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)
    random.seed(0)  # global RNGs play no role
    c = t(x, torch.Generator().manual_seed(8))
    assert not torch.equal(a, c)
