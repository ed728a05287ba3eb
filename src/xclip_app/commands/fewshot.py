"""``xclip-video fewshot``: the paper's few-shot protocol (K videos per class, train, test).

    xclip-video fewshot --config configs/fewshot/hmdb51.yaml data.root=/data/hmdb51 \
        protocol.train_file=lists/hmdb51/train_split1.txt data.val_file=lists/hmdb51/test_split1.txt

Writes ``fewshot_table.txt`` and ``fewshot_results.json`` (one row per K and seed with the
provenance of its number: run, checkpoint and its weights' SHA-256, list fingerprints, views,
view mode, seeds) under ``--output``, atomically; existing ones are refused before any training
unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xclip_app.recipe_args import add_recipe_arguments, load_recipe

NAME = "fewshot"
HELP = "few-shot protocol: for each K (and seed) draw K videos per class, train, test; mean ± std table"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_recipe_arguments(p)
    p.add_argument("--shots", help="comma-separated K values (sets protocol.shots), e.g. 2,4")
    p.add_argument("--seeds", help="comma-separated draw seeds (sets protocol.seeds), e.g. 0,1,2")
    p.add_argument("--resume", help="'auto': continue each K/seed run from its latest checkpoint")
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace fewshot_table.txt / fewshot_results.json of an earlier protocol run",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip_app.outputs import check_output  # lazy: CLI start-up
    from xclip_app.train import distributed as D  # lazy: CLI start-up
    from xclip_app.train.logs import quiet_other_ranks  # lazy: CLI start-up
    from xclip_app.train.protocols import format_fewshot_table, run_fewshot  # lazy: CLI start-up

    extra = []
    if args.shots:
        extra.append(f"protocol.shots=[{args.shots}]")
    if args.seeds:
        extra.append(f"protocol.seeds=[{args.seeds}]")
    cfg = load_recipe(args, extra)
    out = Path(cfg.output.dir)
    table_file, results_file = out / "fewshot_table.txt", out / "fewshot_results.json"
    inputs = [cfg.protocol.train_file, cfg.data.val_file, cfg.data.label_list, cfg.data.root]
    for target in (table_file, results_file):
        check_output(target, flag="--output", overwrite=args.overwrite, inputs=inputs)
    info = D.init(args.device)
    quiet_other_ranks(info)
    try:
        results = run_fewshot(cfg, info, resume=args.resume)
        if info.is_main:
            views = f"{cfg.test.final_num_clips}x{cfg.test.final_num_crops}"
            table = format_fewshot_table(
                f"few-shot, {cfg.model.arch}, {views} view(s), {cfg.protocol.report} model", results
            )
            atomic_write_text(table_file, table + "\n", overwrite=args.overwrite)
            atomic_write_text(
                results_file, json.dumps(results, indent=2) + "\n", overwrite=args.overwrite
            )
            print(table)
        return 0
    finally:
        D.cleanup()
