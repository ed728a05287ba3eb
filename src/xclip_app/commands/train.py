"""``xclip-video train``: train X-CLIP from a recipe (fully supervised, few-shot data or ablations).

    xclip-video train --config configs/k400/b16_8f.yaml data.root=/data/k400 \
        data.train_file=/data/k400/train.txt data.val_file=/data/k400/val.txt
    torchrun --nproc_per_node=8 -m xclip_app.cli train --config ... --resume auto

A run folder that already holds a run is refused (exit 2) unless ``--resume auto`` continues it
or ``--overwrite`` starts over (the old run is moved to ``RUN.1/``); ``--resume auto`` on a
finished run prints its summary and writes nothing (exit 0).
"""

from __future__ import annotations

import argparse

from xclip_app.recipe_args import add_recipe_arguments, load_recipe

NAME = "train"
HELP = "train X-CLIP from a YAML recipe (torchrun for several GPUs); --resume auto continues a run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_recipe_arguments(p)
    p.add_argument(
        "--resume",
        help="'auto' (continue the run in the run folder: from its latest checkpoint, or from "
        "scratch if there is none; a finished run is left as it is), or a checkpoint directory "
        "/ run folder to continue. The config must match the run's (the differences are listed)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in a run folder that holds a run: the old run is first moved, whole, to "
        "the first free RUN.1, RUN.2, ... beside it (nothing is deleted)",
    )


def run(args: argparse.Namespace) -> int:
    from xclip_app.train import distributed as D  # lazy: CLI start-up
    from xclip_app.train.logs import quiet_other_ranks  # lazy: CLI start-up
    from xclip_app.train.trainer import Trainer  # lazy: CLI start-up

    cfg = load_recipe(args)
    info = D.init(args.device)
    quiet_other_ranks(info)
    try:
        trainer = Trainer(cfg, resume=args.resume, overwrite=args.overwrite, info=info)
        summary = trainer.fit()  # a NaN loss is an InputError: one line, exit code 2
        if info.is_main:
            if trainer.moved_to is not None:
                print(
                    f"xclip-video train: --overwrite: the previous run is now {trainer.moved_to}/"
                )
            if trainer.already_finished:
                print(
                    f"xclip-video train: {trainer.run_dir} already finished; nothing to do and "
                    "nothing written. Start over with --overwrite, or train into another --output."
                )
            print(summary.table())
        return 0
    finally:
        D.cleanup()
