"""Annotation files as text: read as UTF-8 with or without a BOM (spreadsheet programs write
one), written as UTF-8 with their folder created."""

from __future__ import annotations

import os
from pathlib import Path

from xclip.errors import InputError

from ...atomic import atomic_write_text


def read_annotation_text(path: str | os.PathLike) -> str:
    """The text of an annotation file; ``FileNotFoundError`` naming the file if there is none,
    :class:`~xclip.errors.InputError` naming it if it is not UTF-8."""
    return read_user_text(path, "annotation file")


def read_user_text(path: str | os.PathLike, what: str, shown_as: str = "") -> str:
    """The text of a file a user wrote (annotations, labels, templates), UTF-8 with or without a
    byte-order mark; ``FileNotFoundError`` (``"{what} not found: PATH"``) if there is none,
    :class:`~xclip.errors.InputError` naming it (after ``shown_as``, e.g. the option) and the
    first bad byte if it is not UTF-8."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {p}")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1
        raise InputError(
            f"{shown_as + ' ' if shown_as else ''}{p} is not UTF-8 text (byte "
            f"{e.object[e.start]:#04x} on line {line}); save it as UTF-8 (e.g. "
            "`iconv -f latin1 -t utf-8 IN > OUT`)"
        ) from None


def write_annotation_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` (parent folders created) through :mod:`xclip.atomic`: a file
    xclip did not write is never replaced (:class:`~xclip.ownership.ForeignFileError`)."""
    return atomic_write_text(Path(path), text)
