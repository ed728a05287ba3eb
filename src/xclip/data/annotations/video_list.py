"""Video list (the original's format): one video per line, ``relative/path.mp4 <label_id>``.

Lines are whitespace-split, so file names cannot contain spaces; blank lines are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from xclip.errors import InputError

from .entry import VideoEntry, check_label
from .problems import ProblemCollector
from .text import read_annotation_text, write_annotation_text


def collect_video_list(
    text: str, source: str, num_classes: int | None, problems: ProblemCollector
) -> list[VideoEntry]:
    """The valid entries of video-list text; problems are added to ``problems``, not raised, so
    that a caller can report them together with those of other files."""
    entries = []
    nonblank = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        nonblank += 1
        if len(parts) != 2:
            problems.add(
                source,
                lineno,
                f"expected '<path> <label_id>', got {len(parts)} field(s): {line.strip()!r}"
                + (" (file names cannot contain spaces)" if len(parts) > 2 else ""),
            )
            continue
        path, slabel = parts
        try:
            label = int(slabel)
        except ValueError:
            problems.add(source, lineno, f"label {slabel!r} is not an integer")
            continue
        if check_label(label, num_classes, source, lineno, problems):
            entries.append(VideoEntry(path, label, source, lineno))
    if nonblank == 0:
        problems.add(source, None, "empty video list")
    return entries


def parse_video_list(
    text: str, source: str = "<list>", num_classes: int | None = None
) -> list[VideoEntry]:
    """Entries of the original list format; raises :class:`AnnotationError`."""
    problems = ProblemCollector()
    entries = collect_video_list(text, source, num_classes, problems)
    problems.raise_if_any()
    return entries


def read_video_list(path: str | os.PathLike, num_classes: int | None = None) -> list[VideoEntry]:
    """Entries of a list file (labels checked against ``num_classes`` when given); raises
    :class:`AnnotationError`."""
    return parse_video_list(read_annotation_text(path), str(path), num_classes)


def format_video_list(entries: Iterable[VideoEntry | tuple[str, int]]) -> str:
    """List-format text, one ``path label`` line per entry; ``ValueError`` for a path that is
    empty or contains whitespace."""
    out = []
    for e in entries:
        path, label = (e.path, e.label) if isinstance(e, VideoEntry) else e
        if not path or any(c.isspace() for c in path):
            raise InputError(
                f"path {path!r} is empty or contains whitespace (not allowed in a list file)"
            )
        out.append(f"{path} {int(label)}\n")
    return "".join(out)


def write_video_list(
    path: str | os.PathLike, entries: Iterable[VideoEntry | tuple[str, int]]
) -> Path:
    """Write a list file of ``entries`` (parent folders created); returns the path."""
    return write_annotation_text(path, format_video_list(entries))
