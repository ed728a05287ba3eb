"""``xclip-video recipes``: list the training recipes shipped with the package, or print one.

xclip-video recipes                 # names, one a line
xclip-video recipes k400/b16_8f     # the YAML text of one recipe
"""

from __future__ import annotations

import argparse

NAME = "recipes"
HELP = "list the shipped training recipes (names for --config), or print one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a recipe name (e.g. k400/b16_8f): print its YAML")
    p.add_argument("--path", action="store_true", help="print the recipe's file path instead")


def run(args: argparse.Namespace) -> int:
    from xclip_app.exit_codes import UsageError  # lazy: CLI start-up
    from xclip_app.recipe_files import list_recipes, recipe_path  # lazy: CLI start-up

    if args.name is None:
        for name in list_recipes():
            print(name)
        return 0
    path = recipe_path(args.name)
    if path is None:
        raise UsageError(
            f"no shipped recipe {args.name!r}; `xclip-video recipes` lists them (e.g. k400/b16_8f)"
        )
    print(path if args.path else path.read_text(encoding="utf-8"), end="\n" if args.path else "")
    return 0
