"""``xclip-video zeroshot``: the paper's zero-shot protocol with one checkpoint.

    xclip-video zeroshot --config configs/zeroshot/ucf101.yaml --checkpoint zero_shot_model/ \
        data.root=/data/ucf101 protocol.eval_sets.0.val_file=...   # or edit the recipe

Writes, under ``--output`` (``output.dir``): one report folder per set (``<set name>/``), the
table ``zeroshot_table.txt`` and ``zeroshot_results.json`` (per set: videos, classes, top-1,
top-5, and the provenance of the number; mean and std). Existing outputs are refused before the
model is loaded unless ``--overwrite``; every file is written atomically.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xclip_app.recipe_args import add_recipe_arguments, load_recipe

NAME = "zeroshot"
HELP = (
    "zero-shot protocol: evaluate a checkpoint on each split/subset, print mean ± std top-1/top-5"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_recipe_arguments(p)
    p.add_argument(
        "--checkpoint", "--model", "-m", dest="checkpoint", required=True,
        help="X-CLIP checkpoint (training checkpoint/model directory, .pth, HF dir, ARCH.TAG)",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace the reports and tables of an earlier zero-shot run in --output",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip_app.outputs import check_output  # lazy: CLI start-up
    from xclip_app.train import distributed as D  # lazy: CLI start-up
    from xclip_app.train.evaluate import mean_std  # lazy: CLI start-up
    from xclip_app.train.logs import quiet_other_ranks  # lazy: CLI start-up
    from xclip_app.train.protocols import (  # lazy: CLI start-up
        format_table,
        run_zeroshot,
        zeroshot_inputs,
        zeroshot_set_names,
    )

    cfg = load_recipe(args)
    out = Path(cfg.output.dir)
    table_file, results_file = out / "zeroshot_table.txt", out / "zeroshot_results.json"
    ckpt = Path(args.checkpoint)
    targets = [(out / n, True) for n in zeroshot_set_names(cfg)]
    for target, folder in [*targets, (table_file, False), (results_file, False)]:
        check_output(
            target, flag="--output", overwrite=args.overwrite,
            inputs=[args.checkpoint, *zeroshot_inputs(cfg)],
            protected=[ckpt if ckpt.is_dir() else None], folder=folder,
        )  # fmt: skip
    info = D.init(args.device)
    quiet_other_ranks(info)
    try:
        rows, results = run_zeroshot(
            cfg, args.checkpoint, info, out_dir=out, overwrite=args.overwrite
        )
        if info.is_main:
            title = (
                f"zero-shot, {cfg.test.num_clips}x{cfg.test.num_crops} view(s), {args.checkpoint}"
            )
            table = format_table(title, rows)
            m1, s1 = mean_std([r.top1 for r in rows])
            m5, s5 = mean_std([r.top5 for r in rows])
            summary = {
                "checkpoint": args.checkpoint,
                "sets": [
                    {**r.__dict__, "provenance": res.provenance}
                    for r, res in zip(rows, results, strict=True)
                ],
                "top1_mean": m1, "top1_std": s1, "top5_mean": m5, "top5_std": s5,
            }  # fmt: skip
            atomic_write_text(table_file, table + "\n", overwrite=args.overwrite)
            atomic_write_text(
                results_file, json.dumps(summary, indent=2) + "\n", overwrite=args.overwrite
            )
            print(table)
        return 0
    finally:
        D.cleanup()
