"""The training recipes shipped inside the package (``configs/`` of a clone links to them).

A recipe is named by its path below the recipe folder without ``.yaml`` (``k400/b16_8f``); the
``--config`` option of ``train``, ``zeroshot`` and ``fewshot`` takes such a name as well as a file,
so an installed wheel trains from an empty folder: ``xclip-video train --config test/tiny``.
"""

from __future__ import annotations

from pathlib import Path

from xclip_app.exit_codes import UsageError

__all__ = ["RECIPES_ROOT", "list_recipes", "recipe_path", "resolve_recipe"]

RECIPES_ROOT = Path(__file__).resolve().parent / "recipes"


def list_recipes() -> list[str]:
    """Names of the shipped recipes (``"k400/b16_8f"``), sorted; ``base`` files included."""
    return sorted(
        p.relative_to(RECIPES_ROOT).with_suffix("").as_posix() for p in RECIPES_ROOT.rglob("*.yaml")
    )


def recipe_path(name: str) -> Path | None:
    """The file of the shipped recipe ``name`` (``k400/b16_8f``, ``k400/b16_8f.yaml`` or
    ``configs/k400/b16_8f.yaml``), or ``None`` if there is none."""
    rel = name.replace("\\", "/").removeprefix("./").removeprefix("configs/")
    if not rel.endswith(".yaml"):
        rel += ".yaml"
    path = (RECIPES_ROOT / rel).resolve()
    if not path.is_file() or not path.is_relative_to(RECIPES_ROOT):
        return None
    return path


def resolve_recipe(arg: str) -> Path:
    """``--config``'s value as a file: an existing file as given, else a shipped recipe.

    Raises :class:`UsageError` naming ``xclip-video recipes`` when it is neither.
    """
    given = Path(arg).expanduser()
    if given.is_file():
        return given
    shipped = recipe_path(arg)
    if shipped is not None:
        return shipped
    raise UsageError(
        f"--config {arg}: no such file and no shipped recipe of that name; "
        "`xclip-video recipes` lists the recipes (e.g. --config k400/b16_8f)"
    )
