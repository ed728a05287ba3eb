"""Annotation files as text: read as UTF-8 with or without a BOM (spreadsheet programs write
one), written as UTF-8 with their folder created."""

from __future__ import annotations

import os
from pathlib import Path


def read_annotation_text(path: str | os.PathLike) -> str:
    """The text of an annotation file; ``FileNotFoundError`` naming the file if there is none."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"annotation file not found: {p}")
    return p.read_text(encoding="utf-8-sig")


def write_annotation_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` (parent folders created); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p
