"""``xclip-video interpolate``: a fine-tuned model mixed with the image CLIP it started from, in
weight space (Open-VCLIP, WiSE-FT), written as a new model folder.

    xclip-video interpolate runs/k400/checkpoints/epoch_30 --source ViT-B-16/openai --alpha 0.5 -o k400_wise
    xclip-video interpolate FINETUNED --source clip.safetensors --alphas 0,0.25,0.5,0.75,1 \\
        --val-file heldout/val.txt --label-list heldout/labels.csv --root videos -o OUT

With ``--alphas`` each value is evaluated (single view) on ``--val-file``, which must hold
classes the model was *not* fine-tuned on, and the best is written.
"""

from __future__ import annotations

import argparse

from xclip_app.exit_codes import UsageError
from xclip_app.inference_args import add_overwrite_argument
from xclip_app.option_types import finite_float

NAME = "interpolate"
HELP = (
    "mix a fine-tuned model with its source image CLIP in weight space (--alpha, or the best of "
    "--alphas on held-out classes) and write a new model folder"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("finetuned", help="the fine-tuned model: a checkpoint or model folder, ARCH.TAG")
    p.add_argument(
        "--source",
        required=True,
        help="the image CLIP weights it was fine-tuned from (model.clip_weights of its recipe: "
        "a file or an open_clip name such as ViT-B-16/openai)",
    )
    p.add_argument("-o", "--output", required=True, help="the new model folder")
    a = p.add_mutually_exclusive_group(required=True)
    a.add_argument(
        "--alpha",
        type=finite_float(0.0, 1.0),
        help="weight of the fine-tuned model: (1 - A) * CLIP + A * fine-tuned, A in [0, 1]",
    )
    a.add_argument(
        "--alphas",
        help="comma-separated alphas to try on --val-file (held-out classes); the best is written",
    )
    g = p.add_argument_group("choosing alpha (with --alphas)")
    g.add_argument("--val-file", help="annotation list of videos of classes not fine-tuned on")
    g.add_argument("--label-list", help="labels CSV (id,name) of those classes")
    g.add_argument("--root", default="", help="folder the list's paths are relative to")
    g.add_argument(
        "--template",
        action="append",
        help="class-text template with {} (repeat for an ensemble; default: {})",
    )
    g.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)"
    )
    g.add_argument("--workers", type=int, default=1, help="decoding worker processes")
    add_overwrite_argument(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path  # lazy: CLI start-up

    import torch  # lazy: CLI start-up

    import xclip  # lazy: CLI start-up
    from xclip.inference import check_templates  # lazy: CLI start-up
    from xclip.interpolation import interpolate_models, source_model  # lazy: CLI start-up
    from xclip_app.outputs import check_output  # lazy: CLI start-up
    from xclip_app.train.alpha_search import (  # lazy: CLI start-up
        choose_alpha,
        evaluate_model,
        parse_alphas,
    )

    if args.alphas is not None:
        try:
            alphas = parse_alphas(args.alphas)
        except ValueError as e:
            raise UsageError(f"--alphas: {e}") from None
        if not (args.val_file and args.label_list):
            raise UsageError(
                "--alphas chooses alpha on held-out classes: add --val-file LIST --label-list "
                "CSV (classes the model was not fine-tuned on), or give one --alpha"
            )
    elif not 0.0 <= args.alpha <= 1.0:
        raise UsageError(f"--alpha must be in [0, 1] (1 = the fine-tuned model), got {args.alpha}")
    templates = check_templates(args.template or ["{}"])
    inputs = [args.finetuned, args.source, args.val_file, args.label_list]
    protected = [args.finetuned] if Path(args.finetuned).is_dir() else []
    out = check_output(
        args.output, overwrite=args.overwrite, inputs=inputs, protected=protected, folder=True
    )
    finetuned = xclip.load_model(args.finetuned)
    source = source_model(finetuned, args.source)
    if args.alphas is not None:
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")

        def score(model):
            return evaluate_model(
                model, args.val_file, args.label_list, args.root, templates=templates,
                device=device, workers=args.workers,
            )  # fmt: skip

        alpha, rows = choose_alpha(source, finetuned, alphas, score)
        print("alpha  top-1   top-5   (held-out classes, 1 view)")
        for r in rows:
            mark = "  <- written" if r.alpha == alpha else ""
            print(f"{r.alpha:5.2f}  {r.top1:6.2f}  {r.top5:6.2f}{mark}")
    else:
        alpha = args.alpha
    model = interpolate_models(source, finetuned, alpha)
    xclip.save_model(model, out, overwrite=args.overwrite)
    print(f"wrote {out}: (1 - {alpha:g}) * {args.source} + {alpha:g} * {args.finetuned}")
    return 0
