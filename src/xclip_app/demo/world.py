"""The procedural world of the demo: coloured shapes, where they are, and how they move.

Everything is a pure function of a :class:`numpy.random.Generator`, so a seed fixes every pixel.

* Static content (what stage 1, the image-text pretraining, sees): an object with a **colour**
  (:data:`COLOURS`) and a **shape** (:data:`SHAPES`) at a **position** (:data:`POSITIONS`, a 3x3
  grid: "top left" ... "bottom right"), on a dark, slightly noisy background.
* Motion (what only video shows): :data:`MOTIONS`, five **time-reversal pairs**. A clip of the
  second verb of a pair is *exactly* a clip of the first verb played backwards
  (``frames[::-1]``), so a model that ignores frame order cannot tell the two apart.
* An optional static **distractor** (another colour and shape) stands still while the subject
  moves; the class is about the moving object, so telling which object is the subject needs the
  frames to be compared with each other.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from xclip.errors import InputError

__all__ = [
    "COLOURS",
    "MOTIONS",
    "PAIRS",
    "POSITIONS",
    "SHAPES",
    "ClipParams",
    "caption_attributes",
    "caption_for",
    "class_name",
    "render_clip",
    "render_image",
    "sample_clip_params",
]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 40, 40),
    "green": (40, 200, 60),
    "blue": (60, 100, 240),
    "yellow": (235, 215, 40),
    "purple": (170, 70, 215),
}
SHAPES: tuple[str, ...] = ("square", "triangle", "cross")
# (forward verb, its time reversal)
PAIRS: tuple[tuple[str, str], ...] = (
    ("moving right", "moving left"),
    ("moving down", "moving up"),
    ("growing", "shrinking"),
    ("circling clockwise", "circling counterclockwise"),
    ("appearing", "disappearing"),
)
MOTIONS: tuple[str, ...] = tuple(v for pair in PAIRS for v in pair)
# 3x3 grid: (name, column 0..2, row 0..2)
POSITIONS: tuple[tuple[str, int, int], ...] = (
    ("top left", 0, 0), ("top", 1, 0), ("top right", 2, 0),
    ("left", 0, 1), ("centre", 1, 1), ("right", 2, 1),
    ("bottom left", 0, 2), ("bottom", 1, 2), ("bottom right", 2, 2),
)  # fmt: skip
CIRCLE_RADIUS = 0.235  # "circling": radius of the circle, fraction of the frame
MARGIN = 0.14  # objects stay this fraction of the frame away from the border (eval centre crop)


def class_name(colour: str, motion: str) -> str:
    """The text of a video class, e.g. ``"a red object moving left"``."""
    return f"a {colour} object {motion}"


# --- rasterising ----------------------------------------------------------------------------------


def _polygon(shape: str, cx: float, cy: float, size: float, angle: float) -> np.ndarray:
    """Vertices ``[N, 2]`` (x, y in pixels) of ``shape`` of circumradius ``size / 2``.

    ``angle`` in radians; image y points down, so increasing the angle turns the shape
    *clockwise* on screen.
    """
    r = size / 2
    if shape == "square":
        base = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        pts = np.array(base, np.float64) * r / math.sqrt(2) * 1.25
    elif shape == "triangle":
        a = np.deg2rad([-90, 30, 150])
        pts = np.stack([np.cos(a), np.sin(a)], 1) * r * 1.1
    elif shape == "cross":
        w = 0.36
        base = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w),
                (-1, w), (-1, -w), (-w, -w)]  # fmt: skip
        pts = np.array(base, np.float64) * r
    else:
        raise InputError(f"unknown shape {shape!r}; valid: {SHAPES}")
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return pts @ rot.T + np.array([cx, cy])


def _coverage(poly: np.ndarray, h: int, w: int, ss: int = 2) -> np.ndarray:
    """Fraction ``[H, W]`` of each pixel inside ``poly`` (even-odd rule, ``ss x ss`` samples)."""
    off = (np.arange(ss) + 0.5) / ss
    ys = (np.arange(h)[:, None] + off[None, :]).reshape(-1)
    xs = (np.arange(w)[:, None] + off[None, :]).reshape(-1)
    py, px = np.meshgrid(ys, xs, indexing="ij")
    inside = np.zeros(py.shape, bool)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for a, b, c, d in zip(x0, y0, x1, y1, strict=True):
        if b == d:
            continue
        crosses = (b > py) != (d > py)
        xint = a + (py - b) * (c - a) / (d - b)
        inside ^= crosses & (px < xint)
    return inside.reshape(h, ss, w, ss).mean(axis=(1, 3))


def _paint(img: np.ndarray, shape: str, colour, cx, cy, size, angle, alpha: float = 1.0) -> None:
    if alpha <= 0 or size <= 0:
        return
    h, w = img.shape[:2]
    cov = _coverage(_polygon(shape, cx, cy, size, angle), h, w)[..., None] * alpha
    img[...] = img * (1 - cov) + np.asarray(colour, np.float32) * cov


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    tint = rng.uniform(15, 65, size=3)
    img = np.empty((h, w, 3), np.float32)
    img[...] = tint
    return img


def _colour(name: str, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.asarray(COLOURS[name], np.float32) + rng.normal(0, 10, 3), 0, 255)


# --- stage 1: still images with captions ----------------------------------------------------------


def caption_for(
    colour: str, shape: str, position: str, motion: str | None, rng: np.random.Generator
) -> str:
    """A caption of a still image, like alt text: every attribute is named most of the time,
    sometimes one is left out, so the text encoder learns each word on its own. A still that
    shows a motion cue names the motion in most of its captions."""
    u = rng.random()
    if motion is not None and rng.random() < 0.8:
        if u < 0.4:
            return f"a {colour} {shape} {motion}"
        if u < 0.7:
            return f"a {colour} object {motion}"
        if u < 0.85:
            return f"a {colour} {shape} at the {position} {motion}"
        return f"a {shape} {motion}"
    if u < 0.55:
        return f"a {colour} {shape} at the {position}"
    if u < 0.7:
        return f"a {colour} {shape}"
    if u < 0.85:
        return f"a {colour} object at the {position}"
    return f"a {shape} at the {position}"


_CAPTION = re.compile(
    rf"a (?:(?P<colour>{'|'.join(COLOURS)}) )?(?P<shape>{'|'.join(SHAPES)}|object)"
    rf"(?: at the (?P<pos>{'|'.join(p[0] for p in POSITIONS)}))?"
    rf"(?: (?P<motion>{'|'.join(MOTIONS)}))?$"
)


def caption_attributes(caption: str) -> dict[str, str]:
    """The attributes a caption of :func:`caption_for` names (keys ``colour``, ``shape``, ``pos``,
    ``motion``; ``"object"`` names no shape): ``"a red square at the top"`` ->
    ``{"colour": "red", "shape": "square", "pos": "top"}``."""
    m = _CAPTION.match(caption)
    if m is None:
        raise InputError(f"unexpected caption {caption!r}")
    d = {k: v for k, v in m.groupdict().items() if v}
    if d.get("shape") == "object":
        del d["shape"]
    return d


# Stills cannot show time, so a still of a moving object carries a sign, as a comic draws speed
# lines or a road sign an arrow: a white dot at one of ten places along the border, one per motion.
_SIGN_SLOTS: dict[str, tuple[float, float]] = {
    motion: (0.5 + 0.41 * math.cos(2 * math.pi * k / len(MOTIONS) + 0.3),
             0.5 + 0.41 * math.sin(2 * math.pi * k / len(MOTIONS) + 0.3))
    for k, motion in enumerate(MOTIONS)
}  # fmt: skip


def _draw_sign(img: np.ndarray, motion: str) -> None:
    """The motion's sign: a white dot at the motion's place on a ring near the border."""
    size = img.shape[0]
    sx, sy = _SIGN_SLOTS[motion]
    _paint(img, "square", (255, 255, 255), sx * size, sy * size, size * 0.13, math.pi / 4)


def render_image(
    rng: np.random.Generator, size: int = 48, motion_p: float = 0.3
) -> tuple[np.ndarray, str, dict[str, str]]:
    """One still ``uint8 [size, size, 3]`` image, its caption and its full attributes
    (``colour``, ``shape``, ``pos``, ``motion``).

    With probability ``motion_p`` the still is of a moving object: it carries that motion's sign
    (a white dot at the motion's place on a ring near the border) and its caption usually names
    the motion. That is how the
    image-text model learns the motion *words* from stills, as CLIP learns "running" from photos.
    The videos carry no signs: how each motion looks over time is learned only from videos.
    """
    colour = str(rng.choice(list(COLOURS)))
    shape = str(rng.choice(SHAPES))
    pos, col, row = POSITIONS[int(rng.integers(len(POSITIONS)))]
    motion = str(rng.choice(MOTIONS)) if rng.random() < motion_p else None
    obj = rng.uniform(0.24, 0.36) * size
    lo, hi = MARGIN * size + obj / 2, (1 - MARGIN) * size - obj / 2
    cell = (hi - lo) / 3
    cx = lo + (col + rng.uniform(0.2, 0.8)) * cell
    cy = lo + (row + rng.uniform(0.2, 0.8)) * cell
    img = _background(rng, size, size)
    _paint(img, shape, _colour(colour, rng), cx, cy, obj, rng.uniform(0, 2 * math.pi))
    if motion is not None:
        _draw_sign(img, motion)
    img += rng.normal(0, 3, img.shape)
    caption = caption_for(colour, shape, pos, motion, rng)
    attrs = {"colour": colour, "shape": shape, "pos": pos, "motion": motion or "none"}
    return np.clip(img, 0, 255).astype(np.uint8), caption, attrs


# --- videos ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipParams:
    """Everything that defines one *forward* clip (the first verb of a pair)."""

    pair: int  # index into PAIRS
    colour: str
    shape: str
    cx: float  # centre at the middle of the clip, fraction of the frame
    cy: float
    size: float  # full size, fraction of the frame
    angle: float  # orientation in radians (circling: where on the circle the clip starts)
    extent: float  # how far the motion goes (fraction of the frame / turns / growth)
    onset: float  # appearing: when the fade-in starts (fraction of the clip)
    distractor: (
        tuple[str, str, float, float, float, float] | None
    )  # colour, shape, cx, cy, size, angle


def sample_clip_params(
    rng: np.random.Generator, pair: int, colour: str, distractor_p: float = 0.5
) -> ClipParams:
    """A random forward clip of ``PAIRS[pair]`` with a ``colour`` subject: shape, size, place and
    extent of the motion, and with probability ``distractor_p`` a static distractor."""
    shape = str(rng.choice(SHAPES))
    size = rng.uniform(0.24, 0.30)
    if PAIRS[pair][0] == "circling clockwise":
        size = rng.uniform(0.18, 0.22)  # room for the circle and the distractor at its centre
    extent = rng.uniform(0.46, 0.54)  # translation span (fraction of the frame)
    if PAIRS[pair][0] == "circling clockwise":
        # radians swept around the frame centre, starting near the top: 210-240 degrees, about
        # 30 degrees between the frames that 8-of-16 sampling keeps
        extent = rng.uniform(3.7, 4.2)
    elif PAIRS[pair][0] == "growing":
        extent = rng.uniform(0.3, 0.4)  # start size as a fraction of the full size
    lo, hi = MARGIN + size / 2, 1 - MARGIN - size / 2
    cx, cy = rng.uniform(lo, hi), rng.uniform(lo, hi)
    if PAIRS[pair][0] == "moving right":
        cx = 0.5 + rng.uniform(-0.04, 0.04)
    if PAIRS[pair][0] == "moving down":
        cy = 0.5 + rng.uniform(-0.04, 0.04)
    angle = float(rng.uniform(0, 2 * math.pi))
    if PAIRS[pair][0] == "circling clockwise":
        # the circle's centre (near the frame centre) and radius; ``angle`` is where the circle
        # starts, measured clockwise from "right": near the top (-90 degrees)
        cx, cy = 0.5 + rng.uniform(-0.02, 0.02), 0.5 + rng.uniform(-0.02, 0.02)
        angle = -math.pi / 2 + float(rng.uniform(-0.35, 0.35))
    distractor = None
    if rng.random() < distractor_p:
        others = [c for c in COLOURS if c != colour]
        d_colour = str(rng.choice(others))
        d_shape = str(rng.choice(SHAPES))
        d_size = rng.uniform(0.16, 0.22)
        # keep it away from the subject's path: put it in a corner opposite the subject
        dx = 0.2 if cx > 0.5 else 0.8
        dy = 0.2 if cy > 0.5 else 0.8
        if PAIRS[pair][0] == "circling clockwise":
            # the subject circles around the distractor
            dx, dy, d_size = cx, cy, rng.uniform(0.12, 0.16)
        distractor = (d_colour, d_shape, dx + rng.uniform(-0.03, 0.03), dy + rng.uniform(-0.03, 0.03),
                      d_size, float(rng.uniform(0, 2 * math.pi)))  # fmt: skip
    return ClipParams(
        pair=pair, colour=colour, shape=shape, cx=float(cx), cy=float(cy), size=float(size),
        angle=angle, extent=float(extent),
        onset=float(rng.uniform(0.2, 0.45)), distractor=distractor,
    )  # fmt: skip


def render_clip(
    p: ClipParams, rng: np.random.Generator, num_frames: int = 16, size: int = 48
) -> np.ndarray:
    """The forward clip ``uint8 [T, size, size, 3]`` of ``p`` (the first verb of its pair).

    The second verb of the pair is ``render_clip(...)[::-1]``.
    """
    verb = PAIRS[p.pair][0]
    bg = _background(rng, size, size)
    colour = _colour(p.colour, rng)
    d_colour = _colour(p.distractor[0], rng) if p.distractor else None
    noise_seed = int(rng.integers(2**31))
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        u = t / max(1, num_frames - 1)  # 0 .. 1
        cx, cy, s, a, alpha = p.cx, p.cy, p.size, p.angle, 1.0
        if verb == "moving right":
            cx = p.cx + (u - 0.5) * p.extent
        elif verb == "moving down":
            cy = p.cy + (u - 0.5) * p.extent
        elif verb == "growing":
            s = p.size * (p.extent + (1 - p.extent) * u)
        elif verb == "circling clockwise":
            th = p.angle + u * p.extent  # image y points down: increasing angles turn clockwise
            cx = p.cx + CIRCLE_RADIUS * math.cos(th)
            cy = p.cy + CIRCLE_RADIUS * math.sin(th)
        elif verb == "appearing":
            alpha = float(np.clip((u - p.onset) / 0.3, 0.0, 1.0))
        img = bg.copy()
        if p.distractor is not None:
            _, d_shape, dx, dy, ds, da = p.distractor
            _paint(img, d_shape, d_colour, dx * size, dy * size, ds * size, da)
        _paint(img, p.shape, colour, cx * size, cy * size, s * size, a, alpha)
        img += np.random.default_rng([noise_seed, t]).normal(0, 3, img.shape)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    return frames
