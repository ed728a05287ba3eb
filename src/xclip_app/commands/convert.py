"""``xclip-video convert``: any supported checkpoint -> xclip native or Hugging Face directory."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    from xclip_app.outputs import check_output  # lazy: CLI start-up

    src = Path(args.input)
    out = check_output(
        args.output, overwrite=args.overwrite, flag="OUTPUT", folder=True, kind="model",
        inputs=[src] if src.exists() else [],
    )  # fmt: skip
    model = xclip.load_model(args.input, num_frames=args.num_frames)
    out = xclip.save_model(model, out, format=args.to, overwrite=args.overwrite)
    c = model.cfg
    n = sum(t.numel() for t in model.state_dict().values())
    print(
        f"wrote {out} ({args.to}): {len(model.state_dict())} tensors, {n / 1e6:.1f}M values, "
        f"ViT/{c.patch_size} width {c.vision_width}, {c.num_frames} frames at {c.image_size}px"
    )
    return 0
