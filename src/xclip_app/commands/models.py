"""``xclip-video models``: list registered architectures (and released weights)."""

from __future__ import annotations

import argparse

NAME = "models"
HELP = "list the registered architectures and their sizes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--params",
        action="store_true",
        help="also build each model to count parameters (slow for L/14)",
    )


def run(args: argparse.Namespace) -> int:
    import xclip  # lazy: CLI start-up

    print(
        f"{'architecture':<20} {'frames':>6} {'size':>5} {'patch':>5} {'width':>5} {'layers':>6} {'embed':>5}"
        + ("   params" if args.params else "")
    )
    for name in xclip.list_models():
        c = xclip.get_config(name)
        line = f"{name:<20} {c.num_frames:>6} {c.image_size:>5} {c.patch_size:>5} {c.vision_width:>5} {c.vision_layers:>6} {c.embed_dim:>5}"
        if args.params:
            n = sum(p.numel() for p in xclip.XCLIP(c).parameters())
            line += f" {n / 1e6:7.1f}M"
        print(line)
    return 0
