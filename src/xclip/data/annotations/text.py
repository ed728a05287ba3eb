"""Annotation files as text: read as UTF-8 with or without a BOM (spreadsheet programs write
one), written as UTF-8 with their folder created."""

from __future__ import annotations

import os
from pathlib import Path

from ...atomic import atomic_write_text


def read_annotation_text(path: str | os.PathLike) -> str:
    """The text of an annotation file; ``FileNotFoundError`` naming the file if there is none."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"annotation file not found: {p}")
    return p.read_text(encoding="utf-8-sig")


def write_annotation_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` (parent folders created) through :mod:`xclip.atomic`: a file
    xclip did not write is never replaced (:class:`~xclip.ownership.ForeignFileError`)."""
    return atomic_write_text(Path(path), text)
