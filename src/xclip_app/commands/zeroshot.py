"""``xclip-video zeroshot``: the paper's zero-shot protocol with one checkpoint.

    xclip-video zeroshot --config configs/zeroshot/ucf101.yaml --checkpoint zero_shot_model/ \
        data.root=/data/ucf101 protocol.eval_sets.0.val_file=...   # or edit the recipe
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xclip_app.train.recipe_args import add_recipe_arguments, load_recipe

NAME = "zeroshot"
HELP = (
    "zero-shot protocol: evaluate a checkpoint on each split/subset, print mean ± std top-1/top-5"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_recipe_arguments(p)
    p.add_argument(
        "--checkpoint", "-m", required=True,
        help="X-CLIP checkpoint (training checkpoint/model directory, .pth, HF dir, ARCH.TAG)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from xclip_app.train import distributed as D  # lazy: CLI start-up
    from xclip_app.train.logs import quiet_other_ranks  # lazy: CLI start-up
    from xclip_app.train.protocols import format_table, run_zeroshot  # lazy: CLI start-up

    cfg = load_recipe(args)
    info = D.init(args.device)
    quiet_other_ranks(info)
    try:
        out = Path(cfg.output.dir)
        rows, _ = run_zeroshot(cfg, args.checkpoint, info, out_dir=out)
        if info.is_main:
            title = (
                f"zero-shot, {cfg.test.num_clips}x{cfg.test.num_crops} view(s), {args.checkpoint}"
            )
            table = format_table(title, rows)
            out.mkdir(parents=True, exist_ok=True)
            (out / "zeroshot_table.txt").write_text(table + "\n", encoding="utf-8")
            print(table)
        return 0
    finally:
        D.cleanup()
