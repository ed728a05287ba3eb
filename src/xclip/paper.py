"""The figures the X-CLIP paper reports (Ni et al., ECCV 2022, arXiv 2208.02816), in one place.

Numbers are copied as printed; table numbers are the paper's. Accuracies are top-1/top-5 in %, GFLOPs
are per view (one video and one 77-token class text, a multiply-add counted once). The weights
registry (:mod:`xclip.pretrained`), the FLOP counter (:mod:`xclip.flops`) and the demo report read
them from here. This module imports nothing, so any layer may use it.
"""

from __future__ import annotations

# Tables 1 and 2 ("GFLOPs x views"), per registered architecture. The 32-frame B/16 of the few-shot
# and zero-shot experiments is not in those tables: its figure is the authors' model zoo's.
PAPER_GFLOPS: dict[str, int] = {
    "xclip_b32_8f": 39,
    "xclip_b32_16f": 75,
    "xclip_b16_8f": 145,
    "xclip_b16_16f": 287,
    "xclip_b16_32f": 571,
    "xclip_l14_8f": 658,
    "xclip_l14_336_16f": 3086,
}

# Table 1: Kinetics-400, fully supervised, (top-1, top-5) with 4x3 views. The model zoo README gives
# 95.7 as the top-5 of B/16 8f; this is the paper's 96.7.
PAPER_KINETICS400: dict[str, tuple[float, float]] = {
    "xclip_b32_8f": (80.4, 95.0),
    "xclip_b32_16f": (81.1, 95.5),
    "xclip_b16_8f": (83.8, 96.7),
    "xclip_b16_16f": (84.7, 96.8),
    "xclip_l14_8f": (87.1, 97.6),
    "xclip_l14_336_16f": (87.7, 97.4),
}

# Table 2: Kinetics-600, fully supervised, (top-1, top-5) with 4x3 views.
PAPER_KINETICS600: dict[str, tuple[float, float]] = {
    "xclip_b16_8f": (85.3, 97.1),
    "xclip_b16_16f": (85.8, 97.3),
    "xclip_l14_8f": (88.3, 97.7),
}

# Table 3 (HMDB-51, UCF-101: 3 test splits) and Table 4 (Kinetics-600: 3 subsets of 160 new
# classes): zero-shot top-1 of B/16 32f, (mean, std), single view.
PAPER_ZEROSHOT_TOP1: dict[str, tuple[float, float]] = {
    "HMDB-51": (44.6, 5.2),
    "UCF-101": (72.0, 2.3),
    "K600": (65.2, 0.4),
}
# Table 4: zero-shot Kinetics-600 top-5, (mean, std).
PAPER_ZEROSHOT_K600_TOP5: tuple[float, float] = (86.1, 0.8)
# Tables 3 and 4 as the demo report prints them: "mean ± std".
PAPER_ZEROSHOT: dict[str, str] = {
    name: f"{mean:.1f} ± {std:.1f}" for name, (mean, std) in PAPER_ZEROSHOT_TOP1.items()
}

# Table 5: few-shot top-1 of B/16 32f, single view, per K (videos per class).
PAPER_FEWSHOT_HMDB: dict[int, float] = {2: 53.0, 4: 57.3, 8: 62.8, 16: 64.0}
PAPER_FEWSHOT_UCF: dict[int, float] = {2: 76.4, 4: 83.4, 8: 88.3, 16: 91.4}

# Table 6: component-wise ablation, B/16 8f on Kinetics-400, top-1 with a single view; keys are the
# demo's variants (CLIP-Mean, + cross-frame communication, + MIT, + video-specific prompts).
PAPER_ABLATION: dict[str, float] = {
    "clip_mean": 80.0,
    "cct": 81.2,
    "mit": 81.7,
    "xclip": 82.3,
}
# Table 6: the full X-CLIP B/16 8f with a single view and with 4x3 views (= its Table 1 top-1).
PAPER_MULTIVIEW: dict[str, float] = {"1x1": PAPER_ABLATION["xclip"], "4x3": 83.8}
