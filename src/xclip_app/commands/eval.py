"""``xclip-video eval``: accuracy of a checkpoint on an annotated list, single- or multi-view.

    xclip-video eval --checkpoint runs/k400/checkpoints/epoch_030 --val-file val.txt \
        --labels kinetics_400_labels.csv --root /data/k400 --views 4x3
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xclip.errors import InputError

NAME = "eval"
HELP = "evaluate a checkpoint: top-1/top-5, mean class accuracy, confusion matrix, per-class report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        "-m",
        required=True,
        help="training checkpoint or model directory, original .pth, HF directory, or ARCH.TAG",
    )
    p.add_argument("--config", "-c", help="recipe to take data.* and test.* from (optional)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    p.add_argument("--val-file", help="annotation list (sets data.val_file)")
    p.add_argument("--labels", help="labels CSV id,name (sets data.label_list)")
    p.add_argument("--root", help="video folder or .tar (sets data.root)")
    p.add_argument("--views", help="CLIPSxCROPS, e.g. 1x1 (default) or 4x3 (the paper's)")
    p.add_argument(
        "--view-mode",
        choices=["random", "uniform"],
        help="multi-view temporal sampling: random (the original) or uniform (deterministic)",
    )
    p.add_argument("--batch-size", type=int, help="videos per process (sets test.batch_size)")
    p.add_argument("--workers", type=int, help="loader workers (sets data.workers)")
    p.add_argument("--out", help="report folder (default: <checkpoint>/eval_<views> or runs/eval)")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument(
        "--precision", choices=["auto", "fp32", "bf16", "fp16"], help="sets train.precision"
    )


def parse_views(text: str) -> tuple[int, int]:
    try:
        clips, crops = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--views must look like 4x3 (clips x crops), got {text!r}") from None
    if clips < 1 or crops not in (1, 3):
        raise InputError(f"--views: clips must be >= 1 and crops 1 or 3, got {text!r}")
    return clips, crops


def run(args: argparse.Namespace) -> int:
    import xclip  # lazy: CLI start-up
    from xclip.data.annotations import read_labels_csv  # lazy: CLI start-up
    from xclip.precision import autocast, resolve_precision  # lazy: CLI start-up
    from xclip_app.train import distributed as D  # lazy: CLI start-up
    from xclip_app.train.classifier import load_classifier  # lazy: CLI start-up
    from xclip_app.train.config import check_paths, load_config  # lazy: CLI start-up
    from xclip_app.train.evaluate import evaluate, format_result, write_report  # lazy: CLI start-up
    from xclip_app.train.loaders import build_eval_loader  # lazy: CLI start-up
    from xclip_app.train.logs import quiet_other_ranks  # lazy: CLI start-up

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
    info = D.init(args.device)
    quiet_other_ranks(info)
    try:
        names = read_labels_csv(cfg.data.label_list)
        clf = load_classifier(args.checkpoint, num_classes=len(names)).to(info.device)
        pre = clf.model.preprocess
        t = cfg.test
        loader = build_eval_loader(
            cfg, info, pre, cfg.data.val_file, cfg.data.label_list,
            num_clips=t.num_clips, num_crops=t.num_crops, view_mode=t.view_mode,
        )  # fmt: skip
        precision = resolve_precision(cfg.train.precision, info.device)
        tokens = xclip.tokenize(names).to(info.device)
        res = evaluate(
            clf, loader, len(names),
            text_features=clf.text_features(tokens), device=info.device,
            autocast=autocast(precision, info.device),
            progress=info.is_main and cfg.output.progress, desc=f"eval {t.num_clips}x{t.num_crops}",
        )  # fmt: skip
        if info.is_main:
            ckpt = Path(args.checkpoint)
            out = (
                Path(args.out)
                if args.out
                else (
                    ckpt / f"eval_{t.num_clips}x{t.num_crops}"
                    if ckpt.is_dir()
                    else Path("runs/eval")
                )
            )
            write_report(res, out, names, [e.path for e in loader.dataset.entries])
            print(format_result(res))
            print(
                f"report: {out} (metrics.json, per_class.csv, confusion.{{npy,csv,png}}, predictions.csv)"
            )
        return 0
    finally:
        D.cleanup()
