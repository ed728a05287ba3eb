"""``xclip-video study``: a paired study of training options over the same seeds.

    xclip-video study --config my_study.yaml -o runs/my_study --seeds 0,1,2,3,4

The recipe is an ordinary training recipe with ``protocol.options`` (each a name and the
overrides that make it), ``protocol.baseline`` and ``protocol.train_seeds`` (``--seeds``); every
option trains on every seed and is tested on ``protocol.eval_sets`` (or ``data.val_file``).
Writes ``study_table.md`` and ``study_results.json`` (each option's paired difference against
the baseline with its 95 % interval, the number of seeds, the power and the verdict) under
``--output``, atomically; existing ones are refused before any training unless
``--overwrite``. The runs under ``--output/runs`` are the study's own: a finished one is reused
(more seeds train only the new ones), an interrupted one continues from its latest checkpoint,
one whose settings changed is refused. See docs/training.md, "Paired studies".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xclip_app.option_types import finite_float
from xclip_app.recipe_args import add_recipe_arguments, load_recipe

NAME = "study"
HELP = (
    "paired study: train each option of a recipe on the same seeds, test each, and write each "
    "option's paired difference against the baseline with a 95% interval and a verdict"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_recipe_arguments(p)
    p.add_argument("--seeds", help="comma-separated training seeds (sets protocol.train_seeds)")
    p.add_argument(
        "--effect", type=finite_float(0.0, 100.0, low_open=True), default=5.0,
        help="the difference (points of top-1) the power is stated for (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace study_table.md / study_results.json of an earlier study",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip_app.outputs import check_output  # lazy: CLI start-up
    from xclip_app.train import distributed as D  # lazy: CLI start-up
    from xclip_app.train.logs import quiet_other_ranks  # lazy: CLI start-up
    from xclip_app.train.study import (  # lazy: CLI start-up
        check_study,
        format_study_table,
        run_study,
        study_sets,
    )

    cfg = load_recipe(args, [f"protocol.train_seeds=[{args.seeds}]"] if args.seeds else [])
    check_study(cfg)
    out = Path(cfg.output.dir)
    table_file, results_file = out / "study_table.md", out / "study_results.json"
    inputs = [cfg.data.train_file, cfg.data.label_list, cfg.data.root]
    inputs += [v for s in study_sets(cfg) for v in (s.val_file, s.label_list, s.root)]
    for target in (table_file, results_file):
        check_output(target, flag="--output", overwrite=args.overwrite, inputs=inputs)
    info = D.init(args.device)
    quiet_other_ranks(info)
    try:
        result = run_study(cfg, info, effect=args.effect)
        if info.is_main:
            table = format_study_table(result)
            atomic_write_text(table_file, table + "\n", overwrite=args.overwrite)
            atomic_write_text(
                results_file, json.dumps(result, indent=2) + "\n", overwrite=args.overwrite
            )
            print(table)
        return 0
    finally:
        D.cleanup()
