"""``xclip-video eval``: accuracy of a checkpoint on an annotated list, single- or multi-view.

    xclip-video eval --checkpoint runs/k400/checkpoints/epoch_030 --val-file val.txt \
        --labels kinetics_400_labels.csv --root /data/k400 --views 4x3

The report folder (``metrics.json`` with the provenance of the number, confusion matrix,
per-class and per-video CSVs) is written whole or not at all. ``-o/--output DIR`` (or ``--out``) that exists is
refused unless ``--overwrite``; without it the report goes to
``runs/eval/<checkpoint name>_<views>`` or, if that exists, the first free ``...-2``, ``-3``.
Nothing is ever written into the checkpoint's folder, and an output that is (or holds) an input
is refused. All of this is checked before the model is loaded.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from xclip_app.exit_codes import UsageError
from xclip_app.inference_args import parse_views

NAME = "eval"
HELP = "evaluate a checkpoint: top-1/top-5, mean class accuracy, confusion matrix, per-class report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        "--model",
        "-m",
        dest="checkpoint",
        required=True,
        help="training checkpoint or model directory, original .pth, HF directory, or ARCH.TAG",
    )
    p.add_argument("--config", "-c", help="recipe to take data.* and test.* from (optional)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    p.add_argument("--val-file", help="annotation list (sets data.val_file)")
    p.add_argument("--labels", help="labels CSV id,name (sets data.label_list)")
    p.add_argument("--root", help="video folder or .tar (sets data.root)")
    p.add_argument(
        "--views",
        metavar="CLIPSxCROPS",
        help="views per video, e.g. 1x1 (default) or 4x3 (the paper's); as in classify and embed",
    )
    p.add_argument(
        "--view-mode",
        choices=["random", "uniform"],
        help="multi-view temporal sampling: random (the original) or uniform (deterministic)",
    )
    p.add_argument("--batch-size", type=int, help="videos per process (sets test.batch_size)")
    p.add_argument("--workers", type=int, help="loader workers (sets data.workers)")
    p.add_argument(
        "-o",
        "--output",
        "--out",
        dest="out",
        help="report folder (default: runs/eval/<checkpoint name>_<views>, versioned -2, -3, ... "
        "if it exists)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing -o/--output folder (as a unit)",
    )
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        help="default: cuda if available, else cpu (several GPUs: torchrun, one per process)",
    )
    p.add_argument(
        "--precision", choices=["auto", "fp32", "bf16", "fp16"], help="sets train.precision"
    )


def run(args: argparse.Namespace) -> int:
    from xclip.data.annotations import read_labels_csv  # lazy: CLI start-up
    from xclip.precision import autocast, resolve_precision  # lazy: CLI start-up
    from xclip_app.outputs import check_output  # lazy: CLI start-up
    from xclip_app.train import distributed as D  # lazy: CLI start-up
    from xclip_app.train.classifier import class_tokens, load_classifier  # lazy: CLI start-up
    from xclip_app.train.config import check_paths, load_config  # lazy: CLI start-up
    from xclip_app.train.evaluate import evaluate, format_result, write_report  # lazy: CLI start-up
    from xclip_app.train.loaders import build_eval_loader  # lazy: CLI start-up
    from xclip_app.train.logs import quiet_other_ranks  # lazy: CLI start-up
    from xclip_app.train.provenance import checkpoint_fingerprint  # lazy: CLI start-up

    overrides = list(args.overrides)
    for flag, key in (
        ("val_file", "data.val_file"),
        ("labels", "data.label_list"),
        ("root", "data.root"),
        ("batch_size", "test.batch_size"),
        ("workers", "data.workers"),
        ("view_mode", "test.view_mode"),
        ("precision", "train.precision"),
    ):
        v = getattr(args, flag)
        if v is not None:
            overrides.append(f"{key}={v}")
    if args.views:
        clips, crops = parse_views(args.views)
        overrides += [f"test.num_clips={clips}", f"test.num_crops={crops}"]
    cfg = load_config(args.config, overrides, validate=False)
    check_paths(cfg, ["data.val_file", "data.label_list"])
    t = cfg.test
    ckpt = Path(args.checkpoint)
    views = f"{t.num_clips}x{t.num_crops}"
    inputs = [args.checkpoint, cfg.data.val_file, cfg.data.label_list, cfg.data.root or None]
    protected = [ckpt if ckpt.is_dir() else None]
    if args.out:
        out = check_output(
            args.out, flag="--out", overwrite=args.overwrite, inputs=inputs,
            protected=protected, folder=True,
        )  # fmt: skip
        if_exists = "replace" if args.overwrite else "refuse"
    else:  # a name of our own: never replaces anything, a new version instead
        name = (ckpt.name or str(args.checkpoint)).replace(os.sep, "_")
        out = check_output(
            Path("runs/eval") / f"{name}_{views}",
            flag="--out", overwrite=True, inputs=inputs, protected=protected, folder=True,
        )  # fmt: skip
        if_exists = "version"
    info = D.init(args.device)
    quiet_other_ranks(info)
    try:
        names = read_labels_csv(cfg.data.label_list)
        clf = load_classifier(args.checkpoint, num_classes=len(names)).to(info.device)
        pre = clf.model.preprocess
        loader = build_eval_loader(
            cfg, info, pre, cfg.data.val_file, cfg.data.label_list,
            num_clips=t.num_clips, num_crops=t.num_crops, view_mode=t.view_mode,
        )  # fmt: skip
        precision = resolve_precision(cfg.train.precision, info.device)
        tpl = cfg.data.templates  # a label-text ensemble when set
        tokens = class_tokens(names, tpl).to(info.device)
        res = evaluate(
            clf, loader, len(names),
            text_features=clf.text_features(tokens, max(1, len(tpl))), device=info.device,
            autocast=autocast(precision, info.device),
            progress=info.is_main and cfg.output.progress, desc=f"eval {t.num_clips}x{t.num_crops}",
        )  # fmt: skip
        if info.is_main:
            extra = {
                **checkpoint_fingerprint(args.checkpoint),
                "precision": precision,
                "device": str(info.device),
            }
            try:
                out = write_report(
                    res, out, names, [e.path for e in loader.dataset.entries],
                    extra=extra, if_exists=if_exists,
                )  # fmt: skip
            except FileExistsError:
                raise UsageError(
                    f"{out} was created while evaluating; add --overwrite to replace it, or "
                    "choose another --out"
                ) from None
            print(format_result(res))
            print(
                f"report: {out} (metrics.json, per_class.csv, confusion.{{npy,csv,png}}, predictions.csv)"
            )
        return 0
    finally:
        D.cleanup()
