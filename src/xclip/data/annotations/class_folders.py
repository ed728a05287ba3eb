"""Folder per class: ``root/<class>/**/<video>``; the classes are the sorted folder names."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from xclip.data.video import VIDEO_EXTENSIONS

from .entry import VideoEntry
from .problems import ProblemCollector


def scan_class_folders(
    root: str | os.PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS
) -> tuple[list[VideoEntry], list[str]]:
    """``root/<class>/**/<video>`` -> (entries with paths relative to root, sorted class names)."""
    # Not xclip.data.video.find_videos: that one takes no extension list and reports an empty
    # folder as a ValueError, where an empty class folder is an annotation problem here.
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    exts = tuple(e.lower() for e in extensions)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    entries = []
    problems = ProblemCollector()
    for label, name in enumerate(classes):
        files = sorted(
            p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in exts
        )
        if not files:
            problems.add(str(root / name), None, "class folder contains no videos")
        entries += [
            VideoEntry(p.relative_to(root).as_posix(), label, str(root), None) for p in files
        ]
    if not classes:
        problems.add(str(root), None, "no class folders")
    problems.raise_if_any()
    return entries, classes
