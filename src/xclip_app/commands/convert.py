"""``xclip-video convert``: any supported checkpoint -> xclip native or Hugging Face directory."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from xclip_app.exit_codes import UsageError

NAME = "convert"
HELP = (
    "convert a checkpoint (original .pth, Hugging Face dir, xclip dir, state dict) to an xclip "
    "model directory or a Hugging Face directory"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="checkpoint file or directory, or a released name ARCH.TAG")
    p.add_argument("output", help="output directory")
    p.add_argument("--to", choices=["native", "hf"], default="native", help="output format")
    p.add_argument("--num-frames", type=int, default=None, help="interpolate to this frame count")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing model folder at OUTPUT"
    )


def run(args: argparse.Namespace) -> int:
    import xclip  # lazy: CLI start-up

    src, out = Path(args.input), Path(args.output)
    if (
        src.exists()
        and out.exists()
        and (os.path.samefile(src, out) or src.resolve().is_relative_to(out.resolve()))
    ):
        raise UsageError(
            f"the output {out} is also the input; write the converted model to another folder "
            f"(--overwrite never replaces an input)"
        )
    if out.exists() and not args.overwrite:
        raise UsageError(
            f"{out} already exists; add --overwrite to replace it, or choose another output"
        )
    model = xclip.load_model(args.input, num_frames=args.num_frames)
    out = xclip.save_model(model, out, format=args.to, overwrite=args.overwrite)
    c = model.cfg
    n = sum(t.numel() for t in model.state_dict().values())
    print(
        f"wrote {out} ({args.to}): {len(model.state_dict())} tensors, {n / 1e6:.1f}M values, "
        f"ViT/{c.patch_size} width {c.vision_width}, {c.num_frames} frames at {c.image_size}px"
    )
    return 0
