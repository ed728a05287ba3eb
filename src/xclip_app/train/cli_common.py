"""Helpers shared by the train/eval/zeroshot/fewshot commands."""

from __future__ import annotations

import argparse
import logging

from . import distributed as D
from .config import RunConfig, load_config


def add_config_arguments(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--config", "-c", required=required, help="YAML recipe (see configs/ and docs/training.md)"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides applied after the recipe, e.g. train.lr=8e-6 data.root=/data/k400",
    )
    p.add_argument("--output", help="run folder (sets output.dir)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if available, else cpu")


def config_from_args(args: argparse.Namespace, extra: list[str] | None = None) -> RunConfig:
    overrides = list(args.overrides or []) + list(extra or [])
    if getattr(args, "output", None):
        overrides.append(f"output.dir={args.output}")
    return load_config(args.config, overrides)


def init_distributed(device: str | None) -> D.DistInfo:
    info = D.init(device)
    if not info.is_main:
        # one console for the whole job: only rank 0 reports progress
        logging.getLogger().setLevel(logging.WARNING)
    return info
