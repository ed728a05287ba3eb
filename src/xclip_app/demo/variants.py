"""The demo's model variants (the paper's ablation rows) and how their runs are named.

Each variant is a recipe of ``configs/demo/`` and a label for the report. A training run is named
``<variant>_s<seed>`` (``"mit_s1"``), except the longer main X-CLIP run, named ``"main"``; the
pipeline names the runs and the report groups them back by variant.
"""

from __future__ import annotations

__all__ = ["VARIANTS", "run_name", "variant_of"]

VARIANTS: dict[str, tuple[str, str]] = {
    # name: (recipe, label in the report)
    "clip_mean": ("clip_mean.yaml", "CLIP-Mean (baseline)"),
    "cct": ("cct.yaml", "+ cross-frame communication"),
    "mit": ("mit.yaml", "+ multi-frame integration transformer"),
    "xclip": ("xclip.yaml", "+ video-specific prompts (X-CLIP)"),
    "linear": ("linear.yaml", "X-CLIP encoder, linear head (w/o text)"),
}


def run_name(variant: str, seed: int) -> str:
    """The name of an ablation run: ``run_name("mit", 1) == "mit_s1"``."""
    return f"{variant}_s{seed}"


def variant_of(run: str) -> str:
    """The variant of an ablation run name (``"mit_s1"`` -> ``"mit"``); ``"main"`` stays ``"main"``."""
    return run.rsplit("_s", 1)[0]
