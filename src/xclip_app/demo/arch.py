"""The demo's architecture ``xclip_demo``, registered while the demo runs.

A ViT-"tiny/8" X-CLIP: 8 frames of 32x32 px (a 4x4 grid of 8 px patches), a 3-block 64-wide vision
tower, a 2-block 64-wide text tower, a 64-d joint space; the same code as ViT-B/16 with other
numbers. The recipes in ``configs/demo/`` name ``model.arch: xclip_demo``; the training engine
accepts registered architectures only, so the demo registers it for the duration of its run
(:func:`registered`) and leaves the library's registry as it found it. To run those recipes by
hand: ``python -m xclip_app.demo train --config configs/demo/xclip.yaml`` (``xclip-video`` with the
architecture registered).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import xclip

DEMO_ARCH = "xclip_demo"

DEMO_CONFIG = xclip.XCLIPConfig(
    embed_dim=64,
    image_size=32,
    patch_size=8,
    vision_width=64,
    vision_layers=3,
    vision_heads=4,
    num_frames=8,
    text_width=64,
    text_layers=2,
    text_heads=4,
    mit_heads=4,
    prompt_heads=4,
    # the prompt offset starts at 1 % of the class text (paper: 10 %); see configs/demo/base.yaml
    prompt_alpha=0.01,
)


@contextlib.contextmanager
def registered() -> Iterator[str]:
    """Register ``xclip_demo`` (unless it already is) and unregister it afterwards."""
    added = DEMO_ARCH not in xclip.list_models()
    if added:
        xclip.register_model(DEMO_ARCH, DEMO_CONFIG)
    try:
        yield DEMO_ARCH
    finally:
        if added:
            xclip.unregister_model(DEMO_ARCH)
