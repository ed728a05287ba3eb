"""``xclip-video fewshot``: the paper's few-shot protocol (K videos per class, train, test).

    xclip-video fewshot --config configs/fewshot/hmdb51.yaml data.root=/data/hmdb51 \
        protocol.train_file=lists/hmdb51/train_split1.txt data.val_file=lists/hmdb51/test_split1.txt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xclip_app.train.recipe_args import add_recipe_arguments, load_recipe

NAME = "fewshot"
HELP = "few-shot protocol: for each K (and seed) draw K videos per class, train, test; mean ± std table"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_recipe_arguments(p)
    p.add_argument("--shots", help="comma-separated K values (sets protocol.shots), e.g. 2,4")
    p.add_argument("--seeds", help="comma-separated draw seeds (sets protocol.seeds), e.g. 0,1,2")
    p.add_argument("--resume", help="'auto': continue each K/seed run from its latest checkpoint")


def run(args: argparse.Namespace) -> int:
    from xclip_app.train import distributed as D  # lazy: CLI start-up
    from xclip_app.train.logs import quiet_other_ranks  # lazy: CLI start-up
    from xclip_app.train.protocols import format_fewshot_table, run_fewshot  # lazy: CLI start-up

    extra = []
    if args.shots:
        extra.append(f"protocol.shots=[{args.shots}]")
    if args.seeds:
        extra.append(f"protocol.seeds=[{args.seeds}]")
    cfg = load_recipe(args, extra)
    info = D.init(args.device)
    quiet_other_ranks(info)
    try:
        results = run_fewshot(cfg, info, resume=args.resume)
        if info.is_main:
            views = f"{cfg.test.final_num_clips}x{cfg.test.final_num_crops}"
            table = format_fewshot_table(
                f"few-shot, {cfg.model.arch}, {views} view(s), {cfg.protocol.report} model", results
            )
            out = Path(cfg.output.dir)
            (out / "fewshot_table.txt").write_text(table + "\n", encoding="utf-8")
            (out / "fewshot_results.json").write_text(json.dumps(results, indent=2) + "\n")
            print(table)
        return 0
    finally:
        D.cleanup()
