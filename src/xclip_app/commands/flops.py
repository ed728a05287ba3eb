"""``xclip-video flops``: GFLOPs per view as the paper counts them, with a per-component breakdown."""

from __future__ import annotations

import argparse
import json

from xclip_app.exit_codes import UsageError

NAME = "flops"
HELP = "count GFLOPs per view (paper convention: 1 video + 1 text of 77 tokens, 1 MAC = 1 FLOP)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("arch", nargs="?", help="architecture name (see `xclip-video models`)")
    p.add_argument("--all", action="store_true", help="table for every architecture of the paper")
    p.add_argument("--frames", type=int, default=None, help="count for this many frames")
    p.add_argument("--image-size", type=int, default=None, help="count for this input size")
    p.add_argument(
        "--mode",
        choices=("paper", "model"),
        default="paper",
        help="paper: fvcore's convention on the original graph (LayerNorm counted, 77 tokens); "
        "model: the multiply-adds our forward executes (no norms)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from xclip.flops import count_flops  # lazy: CLI start-up
    from xclip.paper import PAPER_GFLOPS  # lazy: CLI start-up

    if args.all == bool(args.arch):
        raise UsageError("give an architecture name or --all (not both)")
    if args.all:
        reports = [
            count_flops(n, num_frames=args.frames, image_size=args.image_size, mode=args.mode)
            for n in PAPER_GFLOPS
        ]
    else:
        reports = [
            count_flops(
                args.arch, num_frames=args.frames, image_size=args.image_size, mode=args.mode
            )
        ]
    if args.json:
        out = [r.to_dict() for r in reports]
        print(json.dumps(out if args.all else out[0], indent=2))
        return 0
    if not args.all:
        print(reports[0].format())
        return 0
    comps = ["vision", "vision.message", "mit", "prompt", "text"]
    head = f"{'architecture':<20} {'frames':>6} {'size':>5} {'GFLOPs':>9} {'paper':>7} {'diff':>7}"
    head += "".join(f" {c.replace('vision.', ''):>9}" for c in comps)
    print(head)
    for r in reports:
        paper = f"{r.paper_gflops:g}" if r.paper_gflops is not None else "-"
        diff = f"{100 * r.rel_diff:+.2f}%" if r.rel_diff is not None else "-"
        line = f"{r.arch or '?':<20} {r.num_frames:>6} {r.image_size:>5} {r.total:>9.2f} {paper:>7} {diff:>7}"
        line += "".join(f" {r.components.get(c, 0.0):>9.3f}" for c in comps)
        print(line)
    print(
        f"({args.mode} convention: 1 video [1,T,3,H,W] + 1 text of 77 tokens, multiply-adds "
        f"counted once; 'message' is the cross-frame part of 'vision')"
    )
    return 0
