"""``xclip-video train``: train X-CLIP from a recipe (fully supervised, few-shot data or ablations).

    xclip-video train --config configs/k400/b16_8f.yaml data.root=/data/k400 \
        data.train_file=/data/k400/train.txt data.val_file=/data/k400/val.txt
    torchrun --nproc_per_node=8 -m xclip_app.cli train --config ... --resume auto
"""

from __future__ import annotations

import argparse

from xclip_app.train.recipe_args import add_recipe_arguments, load_recipe

NAME = "train"
HELP = "train X-CLIP from a YAML recipe (torchrun for several GPUs); --resume auto continues a run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_recipe_arguments(p)
    p.add_argument(
        "--resume",
        help="'auto' (latest checkpoint in the run folder, or a fresh start), or a checkpoint "
        "directory / run folder to continue",
    )


def run(args: argparse.Namespace) -> int:
    from xclip_app.train import distributed as D  # lazy: CLI start-up
    from xclip_app.train.logs import quiet_other_ranks  # lazy: CLI start-up
    from xclip_app.train.trainer import NonFiniteLossError, Trainer  # lazy: CLI start-up

    cfg = load_recipe(args)
    info = D.init(args.device)
    quiet_other_ranks(info)
    try:
        trainer = Trainer(cfg, resume=args.resume, info=info)
        try:
            summary = trainer.fit()
        except NonFiniteLossError as e:
            if info.is_main:
                print(f"xclip-video train: stopped: {e}")
            return 3
        if info.is_main:
            print(summary.table())
        return 0
    finally:
        D.cleanup()
