"""``xclip-video convert-openai``: OpenAI CLIP TorchScript archive -> plain safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path

from xclip_app.exit_codes import UsageError
from xclip_app.outputs import check_outputs

NAME = "convert-openai"
HELP = (
    "convert an OpenAI CLIP TorchScript .pt (as downloaded by clip.load) into a safetensors state "
    "dict usable as clip_weights; this runs the archive's code, so only use trusted files"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="OpenAI CLIP archive, e.g. ~/.cache/clip/ViT-B-32.pt")
    p.add_argument("output", type=Path, help="output .safetensors file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT file")


def run(args: argparse.Namespace) -> int:
    from xclip.convert.clip import convert_openai_jit  # lazy: CLI start-up

    if args.output.suffix != ".safetensors":
        raise UsageError(f"output must end in .safetensors, got {args.output}")
    if not args.input.is_file():
        raise UsageError(f"input file not found: {args.input}")
    check_outputs([args.output], overwrite=args.overwrite, inputs=[args.input])
    weights = convert_openai_jit(args.input, args.output)
    sd = weights.state_dict
    n_params = sum(v.numel() for v in sd.values())
    dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in sd.values()})
    print(
        f"wrote {args.output}: {len(sd)} tensors, {n_params / 1e6:.1f}M values "
        f"({', '.join(dtypes)}), architecture {weights.architecture}, QuickGELU"
    )
    print(f"use it with xclip.create_model(ARCH, clip_weights='{args.output}')")
    return 0
