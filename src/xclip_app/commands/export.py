"""``xclip-video export``: a model -> an exported folder (ONNX graphs or ``torch.export``
programs) that ``classify``/``embed``/``serve`` run with ``--model DIR``."""

from __future__ import annotations

import argparse
import time

from xclip_app.exit_codes import UsageError
from xclip_app.inference_args import add_overwrite_argument, input_guards, read_labels
from xclip_app.outputs import check_output

NAME = "export"
HELP = (
    "export a model to ONNX (ONNX Runtime) or torch.export programs: video, text and head "
    "graphs, preprocessing, fingerprint, optional label bank"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        help="checkpoint path (xclip model folder, Hugging Face folder, original .pth) or "
        "released weights ARCH.TAG",
    )
    p.add_argument("-o", "--output", required=True, help="the exported folder to write")
    p.add_argument(
        "--format",
        choices=("onnx", "pt2"),
        default="onnx",
        help="onnx (runs on ONNX Runtime; pip install 'xclip[onnx]') or pt2 (torch.export "
        "programs, torch alone) (default: onnx)",
    )
    p.add_argument(
        "--quantize",
        choices=("int8",),
        default=None,
        help="int8: dynamic int8 weights for the video and text graphs (onnx only; measure the "
        "accuracy change first, see docs/deploy.md)",
    )
    g = p.add_argument_group("labels (optional: stored as a label bank, no tokenizer needed)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--labels", help="comma-separated label texts, e.g. 'cooking,dancing,surfing'")
    x.add_argument("--labels-file", help="text file with one label per line")
    g.add_argument(
        "--template",
        default="{}",
        help="prompt with {} where the label goes, e.g. 'a video of a person {}' (default: {})",
    )
    add_overwrite_argument(p)


def run(args: argparse.Namespace) -> int:
    import xclip  # lazy: CLI start-up

    if args.quantize and args.format != "onnx":
        raise UsageError("--quantize int8 is for --format onnx; drop --quantize or use onnx")
    guards = input_guards(args)
    check_output(
        args.output,
        overwrite=args.overwrite,
        flag="-o",
        folder=True,
        inputs=guards["inputs"],
        protected=guards["protected_folders"],
    )
    labels = read_labels(args)
    t0 = time.perf_counter()

    def say(line: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {line}", flush=True)

    out = xclip.export_model(
        args.model,
        args.output,
        format=args.format,
        labels=labels,
        template=args.template,
        quantize=args.quantize,
        overwrite=args.overwrite,
        progress=say,
    )
    extra = f", a label bank of {len(labels)} labels" if labels else ""
    q = f", {args.quantize} weights" if args.quantize else ""
    print(f"wrote {out} ({args.format}{q}{extra}); run it with --model {out}")
    return 0
