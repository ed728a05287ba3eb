"""The command-line form of a training recipe, shared by the ``train``, ``zeroshot`` and
``fewshot`` commands: ``--config``, ``KEY=VALUE`` overrides, ``--output`` and ``--device``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xclip_app.train.config import RunConfig

__all__ = ["add_recipe_arguments", "load_recipe"]


def add_recipe_arguments(p: argparse.ArgumentParser, required: bool = True) -> None:
    """Add ``--config``, the ``KEY=VALUE`` overrides, ``--output`` and ``--device`` to ``p``."""
    p.add_argument(
        "--config",
        "-c",
        required=required,
        help="YAML recipe: a file, or a shipped recipe name such as k400/b16_8f "
        "(`xclip-video recipes` lists them; docs/training.md)",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides applied after the recipe, e.g. train.lr=8e-6 data.root=/data/k400",
    )
    p.add_argument("-o", "--output", help="run folder (sets output.dir)")
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        help="default: cuda if available, else cpu (several GPUs: torchrun, one per process)",
    )


def load_recipe(args: argparse.Namespace, extra: list[str] | None = None) -> RunConfig:
    """The recipe ``args`` name, with its overrides, then ``extra`` ones, then ``--output``."""
    from xclip_app.recipe_files import resolve_recipe  # lazy: CLI start-up
    from xclip_app.train.config import load_config  # lazy: CLI start-up

    overrides = list(args.overrides or []) + list(extra or [])
    if getattr(args, "output", None):
        overrides.append(f"output.dir={args.output}")
    return load_config(resolve_recipe(args.config) if args.config else None, overrides)
