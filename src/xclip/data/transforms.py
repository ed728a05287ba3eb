"""Spatial transforms of the original X-CLIP pipeline, on plain uint8 tensors.

Input: a clip ``uint8 [T, 3, H, W]`` (``[T, H, W, 3]`` tensors or numpy arrays are converted), or
for evaluation several temporal views ``[N, T, 3, H, W]``. Output: ``float32 [V, T, 3, S, S]``,
normalised with the weights' mean/std (0-1 scale).

Train (:class:`TrainTransform`), in the original order:
1. resize the short side to ``resize_short`` (``int(256/224*size)``), keeping the aspect ratio;
2. ``MultiScaleCrop``: sizes ``int(min(h,w)*s)`` for s in (1, .875, .75, .66), (w, h) pairs whose
   scale indices differ by at most 1, a side within 3 px of ``size`` snapped to it, one of 5 fixed
   positions (4 corners + centre, step ``(img - crop) // 4``) - not RandomResizedCrop;
3. resize to ``size x size`` (aspect ratio may change);
4. horizontal flip with p=0.5, one decision per clip;
5. colour jitter (brightness .4, contrast .4, saturation .2, hue .1, random order) applied with
   p=0.8 per clip, with *independent parameters per frame* as the original (``per_frame_jitter``
   False draws one set for the clip);
6. grayscale with p=0.2, one decision per clip (PIL's ITU-R 601-2 luma, R=G=B);
7. normalise.
Crop, flip, jitter-on/off and grayscale decisions are shared by all frames of the clip.

Eval (:class:`EvalTransform`): 1 crop = resize the short side to ``resize_short`` (256 for 224)
and centre-crop; 3 crops = resize the short side to ``size`` and take left/middle/right (or
top/middle/bottom) crops. Views are crop-major as the original: ``[crop0: clips 0..N-1, crop1: ...]``.

Deliberate difference: resizing uses bilinear interpolation with antialiasing (torchvision) where
the original used OpenCV's bilinear without antialiasing; jitter runs on uint8 tensors through
``torchvision.transforms.v2.functional`` rather than on PIL images (same formulas, tiny rounding
differences).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from xclip.errors import InputError

from ..config import IMAGENET_MEAN, IMAGENET_STD, PreprocessConfig

__all__ = [
    "MULTISCALE_SCALES",
    "ClipParams",
    "EvalTransform",
    "TrainTransform",
    "center_crop",
    "color_jitter",
    "multiscale_crop_box",
    "normalize",
    "resize_short_side",
    "rgb_to_grayscale",
    "short_side_size",
    "three_crop_boxes",
    "to_tchw_uint8",
]

MULTISCALE_SCALES: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)


# --- helpers ------------------------------------------------------------------------------------


def to_tchw_uint8(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``[..., 3, H, W]`` or ``[..., H, W, 3]`` uint8 (tensor or numpy) -> uint8 ``[..., 3, H, W]``."""
    t = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected uint8 frames as a tensor or numpy array, got {type(t).__name__}")
    if t.dtype != torch.uint8:
        raise TypeError(f"expected uint8 frames, got {t.dtype}")
    if t.ndim < 3:
        raise InputError(
            f"expected frames [..., 3, H, W] or [..., H, W, 3], got shape {tuple(t.shape)}"
        )
    if t.shape[-3] != 3 and t.shape[-1] == 3:
        t = t.movedim(-1, -3)
    if t.shape[-3] != 3:
        raise InputError(f"expected 3 colour channels, got shape {tuple(t.shape)}")
    return t.contiguous()


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """(h, w) after resizing the short side to ``short`` (mmcv ``rescale_size``: ``int(x*f + 0.5)``)."""
    f = short / min(height, width)
    return int(height * f + 0.5), int(width * f + 0.5)


def _resize(frames: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if frames.shape[-2:] == (h, w):
        return frames
    return F.resize(frames, [h, w], interpolation=InterpolationMode.BILINEAR, antialias=True)


def resize_short_side(frames: torch.Tensor, short: int) -> torch.Tensor:
    h, w = frames.shape[-2:]
    return _resize(frames, *short_side_size(h, w, short))


def multiscale_crop_box(
    height: int,
    width: int,
    size: int,
    scale_index: tuple[int, int],
    position: int,
    *,
    scales: Sequence[float] = MULTISCALE_SCALES,
    num_fixed_crops: int = 5,
) -> tuple[int, int, int, int]:
    """The original ``MultiScaleCrop`` box ``(x, y, w, h)`` for the chosen candidate.

    ``scale_index = (i_h, i_w)`` indexes ``crop_sizes = [int(min(h, w) * s) for s in scales]``;
    ``position`` indexes the fixed offsets (0 upper-left, 1 upper-right, 2 lower-left,
    3 lower-right, 4 centre; 5..12 the extra 8 of ``num_fixed_crops=13``)."""
    base = min(height, width)
    crop_sizes = [int(base * s) for s in scales]
    crop_w, crop_h = crop_sizes[scale_index[1]], crop_sizes[scale_index[0]]
    if abs(crop_w - size) < 3:
        crop_w = size
    if abs(crop_h - size) < 3:
        crop_h = size
    crop_w, crop_h = min(crop_w, width), min(crop_h, height)  # guard: tiny inputs only
    ws, hs = (width - crop_w) // 4, (height - crop_h) // 4
    offsets = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]
    if num_fixed_crops == 13:
        offsets += [
            (0, 2 * hs),
            (4 * ws, 2 * hs),
            (2 * ws, 4 * hs),
            (2 * ws, 0),
            (ws, hs),
            (3 * ws, hs),
            (ws, 3 * hs),
            (3 * ws, 3 * hs),
        ]
    x, y = offsets[position]
    return x, y, crop_w, crop_h


def multiscale_candidates(
    scales: Sequence[float] = MULTISCALE_SCALES, max_wh_scale_gap: int = 1
) -> list[tuple[int, int]]:
    """(i_h, i_w) scale-index pairs in the original's order (h outer, w inner)."""
    n = len(scales)
    return [(i, j) for i in range(n) for j in range(n) if abs(i - j) <= max_wh_scale_gap]


def center_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """mmaction ``CenterCrop``: ``left = (w - size) // 2``, ``top = (h - size) // 2``."""
    h, w = frames.shape[-2:]
    if h < size or w < size:
        raise InputError(f"cannot centre-crop {size}x{size} from a {h}x{w} frame")
    top, left = (h - size) // 2, (w - size) // 2
    return frames[..., top : top + size, left : left + size]


def three_crop_boxes(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """mmaction ``ThreeCrop`` offsets ``(x, y)`` in its order: left, right, middle (or top,
    bottom, middle for portrait frames). One side of the frame must equal ``size``."""
    if height == size:
        step = (width - size) // 2
        return [(0, 0), (2 * step, 0), (step, 0)]
    if width == size:
        step = (height - size) // 2
        return [(0, 0), (0, 2 * step), (0, step)]
    raise InputError(f"ThreeCrop needs one side equal to {size}, got {height}x{width}")


def rgb_to_grayscale(frames: torch.Tensor) -> torch.Tensor:
    """3-channel grayscale of uint8 ``[..., 3, H, W]`` with PIL's integer luma
    ``(19595 R + 38470 G + 7471 B + 32768) >> 16`` (= ``convert('L')``), so R == G == B exactly.

    (torchvision v2's Grayscale is a silent no-op on ``tv_tensors.Video`` in 0.29.1; this works on
    any plain tensor.)"""
    if frames.dtype != torch.uint8:
        raise TypeError(f"expected uint8 frames, got {frames.dtype}")
    x = frames.to(torch.int32)
    r, g, b = x.unbind(dim=-3)
    lum = ((r * 19595 + g * 38470 + b * 7471 + 32768) >> 16).to(torch.uint8)
    return lum.unsqueeze(-3).expand(frames.shape).contiguous()


@dataclass(frozen=True)
class JitterParams:
    """One draw of torchvision ``ColorJitter.get_params``: order of the 4 ops and their factors."""

    order: tuple[int, ...]
    brightness: float
    contrast: float
    saturation: float
    hue: float


def sample_jitter(
    generator: torch.Generator | None,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
) -> JitterParams:
    def uniform(lo: float, hi: float) -> float:
        return float(torch.empty(1).uniform_(lo, hi, generator=generator))

    order = tuple(int(i) for i in torch.randperm(4, generator=generator))
    return JitterParams(
        order=order,
        brightness=uniform(max(0.0, 1 - brightness), 1 + brightness) if brightness else 1.0,
        contrast=uniform(max(0.0, 1 - contrast), 1 + contrast) if contrast else 1.0,
        saturation=uniform(max(0.0, 1 - saturation), 1 + saturation) if saturation else 1.0,
        hue=uniform(-hue, hue) if hue else 0.0,
    )


def color_jitter(frame: torch.Tensor, p: JitterParams) -> torch.Tensor:
    """Apply one jitter draw to uint8 ``[..., 3, H, W]`` in the drawn order."""
    for op in p.order:
        if op == 0 and p.brightness != 1.0:
            frame = F.adjust_brightness(frame, p.brightness)
        elif op == 1 and p.contrast != 1.0:
            frame = F.adjust_contrast(frame, p.contrast)
        elif op == 2 and p.saturation != 1.0:
            frame = F.adjust_saturation(frame, p.saturation)
        elif op == 3 and p.hue != 0.0:
            frame = F.adjust_hue(frame, p.hue)
    return frame


def normalize(frames: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``[..., 3, H, W]`` -> float32 ``(x/255 - mean) / std`` (mean/std on the 0-1 scale)."""
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) * 255.0
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1) * 255.0
    return (frames.to(torch.float32) - m) / s


def _check_common(
    image_size: object, mean: object, std: object, resize_short: object
) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """Checked ``(image_size, mean, std)`` of a transform (one line naming the bad argument)."""
    if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral):
        raise InputError(f"image_size must be a positive integer, got {image_size!r}")
    if image_size < 1:
        raise InputError(f"image_size must be >= 1, got {image_size}")
    if resize_short is not None and (
        isinstance(resize_short, bool)
        or not isinstance(resize_short, numbers.Integral)
        or resize_short < 0
    ):
        raise InputError(
            f"resize_short must be a positive integer (0 or None: 256/224 * image_size), got "
            f"{resize_short!r}"
        )
    out = []
    for name, v in (("mean", mean), ("std", std)):
        if isinstance(v, str | bytes) or not isinstance(v, Sequence) or len(v) != 3:
            raise InputError(f"{name} must be 3 numbers (R, G, B on the 0-1 scale), got {v!r}")
        if not all(isinstance(x, numbers.Real) and math.isfinite(x) for x in v):
            raise InputError(f"{name} must be 3 finite numbers, got {v!r}")
        out.append(tuple(float(x) for x in v))
    if min(out[1]) <= 0:
        raise InputError(f"std must be > 0 (it divides the pixels), got {std!r}")
    return int(image_size), out[0], out[1]


def _check_probability(name: str, p: object) -> float:
    if not (isinstance(p, numbers.Real) and 0.0 <= p <= 1.0):
        raise InputError(f"{name} is a probability in [0, 1], got {p!r}")
    return float(p)


# --- train --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipParams:
    """Every random decision of one :class:`TrainTransform` call (for tests and debugging)."""

    resized_hw: tuple[int, int]
    crop_box: tuple[int, int, int, int]  # x, y, w, h in the resized frame
    flip: bool
    jitter: tuple[JitterParams, ...] | None  # None: not applied; one per frame (or one per clip)
    grayscale: bool


class TrainTransform:
    """The original training augmentation; ``__call__(frames, generator) -> float [1, T, 3, S, S]``."""

    def __init__(
        self,
        image_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        resize_short: int | None = None,
        *,
        scales: Sequence[float] = MULTISCALE_SCALES,
        max_wh_scale_gap: int = 1,
        num_fixed_crops: int = 5,
        flip_p: float = 0.5,
        jitter_p: float = 0.8,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.2,
        hue: float = 0.1,
        per_frame_jitter: bool = True,
        grayscale_p: float = 0.2,
    ) -> None:
        if num_fixed_crops not in (5, 13):
            raise InputError(f"num_fixed_crops must be 5 or 13, got {num_fixed_crops}")
        image_size, mean, std = _check_common(image_size, mean, std, resize_short)
        flip_p = _check_probability("flip_p", flip_p)
        jitter_p = _check_probability("jitter_p", jitter_p)
        grayscale_p = _check_probability("grayscale_p", grayscale_p)
        if (
            isinstance(scales, str | bytes)
            or not scales
            or not all(isinstance(x, numbers.Real) and 0 < x <= 1 for x in scales)
        ):
            raise InputError(f"scales must be numbers in (0, 1], got {scales!r}")
        self.image_size = int(image_size)
        self.resize_short = int(resize_short or int(256 / 224 * image_size))
        self.mean, self.std = tuple(mean), tuple(std)
        self.scales = tuple(scales)
        self.candidates = multiscale_candidates(self.scales, max_wh_scale_gap)
        self.num_fixed_crops = num_fixed_crops
        self.flip_p, self.jitter_p, self.grayscale_p = flip_p, jitter_p, grayscale_p
        self.jitter_strength = (brightness, contrast, saturation, hue)
        self.per_frame_jitter = per_frame_jitter

    @classmethod
    def from_preprocess(cls, cfg: PreprocessConfig, **overrides) -> TrainTransform:
        """Train transform for weights with these preprocessing constants. The train short side is
        always ``int(256/224*size)`` as the original (``cfg.resize_short`` is the eval size)."""
        return cls(image_size=cfg.image_size, mean=cfg.mean, std=cfg.std, **overrides)

    def sample_params(
        self, num_frames: int, height: int, width: int, generator: torch.Generator | None = None
    ) -> ClipParams:
        g = generator  # None: torch's global RNG

        def rand() -> float:
            return float(torch.rand(1, generator=g))

        rh, rw = short_side_size(height, width, self.resize_short)
        cand = self.candidates[int(torch.randint(len(self.candidates), (1,), generator=g))]
        pos = int(torch.randint(self.num_fixed_crops, (1,), generator=g))
        box = multiscale_crop_box(
            rh,
            rw,
            self.image_size,
            cand,
            pos,
            scales=self.scales,
            num_fixed_crops=self.num_fixed_crops,
        )
        flip = rand() < self.flip_p
        jitter = None
        if rand() < self.jitter_p:
            n = num_frames if self.per_frame_jitter else 1
            jitter = tuple(sample_jitter(g, *self.jitter_strength) for _ in range(n))
        gray = rand() < self.grayscale_p
        return ClipParams((rh, rw), box, flip, jitter, gray)

    def apply(self, frames: torch.Tensor, params: ClipParams) -> torch.Tensor:
        x = _resize(frames, *params.resized_hw)
        bx, by, bw, bh = params.crop_box
        x = x[..., by : by + bh, bx : bx + bw]
        x = _resize(x, self.image_size, self.image_size)
        if params.flip:
            x = x.flip(-1)
        if params.jitter is not None:
            if len(params.jitter) == 1:
                x = color_jitter(x, params.jitter[0])
            else:
                x = torch.stack([color_jitter(f, p) for f, p in zip(x, params.jitter, strict=True)])
        if params.grayscale:
            x = rgb_to_grayscale(x)
        return normalize(x, self.mean, self.std)

    def __call__(
        self, frames: torch.Tensor | np.ndarray, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        x = to_tchw_uint8(frames)
        if x.ndim == 5:  # [V, T, 3, H, W]: each view augmented independently
            return torch.cat([self(v, generator) for v in x])
        if x.ndim != 4:
            raise InputError(f"expected a clip [T, 3, H, W], got shape {tuple(x.shape)}")
        params = self.sample_params(x.shape[0], x.shape[-2], x.shape[-1], generator)
        return self.apply(x, params).unsqueeze(0)

    def __repr__(self) -> str:
        return (
            f"TrainTransform(size={self.image_size}, resize_short={self.resize_short}, "
            f"scales={self.scales}, flip_p={self.flip_p}, jitter_p={self.jitter_p}, "
            f"per_frame_jitter={self.per_frame_jitter}, grayscale_p={self.grayscale_p})"
        )


# --- eval ---------------------------------------------------------------------------------------


class EvalTransform:
    """Deterministic eval views: ``__call__([N, T, 3, H, W] or [T, 3, H, W]) -> [C*N, T, 3, S, S]``
    (C = ``num_crops``, crop-major)."""

    def __init__(
        self,
        image_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        resize_short: int | None = None,
        num_crops: int = 1,
    ) -> None:
        if num_crops not in (1, 3):
            raise InputError(f"num_crops must be 1 or 3, got {num_crops}")
        image_size, mean, std = _check_common(image_size, mean, std, resize_short)
        self.image_size = int(image_size)
        self.resize_short = int(resize_short or int(256 / 224 * image_size))
        self.mean, self.std = tuple(mean), tuple(std)
        self.num_crops = num_crops

    @classmethod
    def from_preprocess(cls, cfg: PreprocessConfig, num_crops: int = 1) -> EvalTransform:
        return cls(cfg.image_size, cfg.mean, cfg.std, cfg.resize_short, num_crops)

    def __call__(
        self, frames: torch.Tensor | np.ndarray, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        x = to_tchw_uint8(frames)
        if x.ndim == 4:
            x = x.unsqueeze(0)
        if x.ndim != 5:
            raise InputError(f"expected [N, T, 3, H, W] or [T, 3, H, W], got {tuple(x.shape)}")
        n, t = x.shape[:2]
        flat = x.reshape(n * t, *x.shape[2:])
        s = self.image_size
        if self.num_crops == 1:
            views = center_crop(resize_short_side(flat, self.resize_short), s).unsqueeze(0)
        else:
            flat = resize_short_side(flat, s)
            h, w = flat.shape[-2:]
            views = torch.stack(
                [flat[..., y : y + s, xo : xo + s] for xo, y in three_crop_boxes(h, w, s)]
            )
        out = normalize(views, self.mean, self.std)  # [C, N*T, 3, s, s]
        return out.reshape(self.num_crops * n, t, 3, s, s)

    def __repr__(self) -> str:
        return (
            f"EvalTransform(size={self.image_size}, resize_short={self.resize_short}, "
            f"num_crops={self.num_crops})"
        )
