"""Loading a dataset's annotations in whatever format they are, with every problem in one error.

The format is told by the source: a folder is a folder per class, a ``.csv`` file a video CSV,
any other file a video list, and a sequence in-memory entries.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .class_folders import scan_class_folders
from .entry import VideoEntry, check_label
from .labels_csv import collect_labels_csv
from .problems import AnnotationError, ProblemCollector
from .text import read_annotation_text
from .video_csv import collect_video_csv
from .video_list import collect_video_list


@dataclass
class Annotations:
    """A dataset's videos and, when known, its class names (index = label)."""

    entries: list[VideoEntry]
    class_names: list[str] | None


def load_annotations(
    source: str | os.PathLike | Sequence[VideoEntry | tuple[str, int]],
    labels: str | os.PathLike | Sequence[str] | None = None,
    *,
    num_classes: int | None = None,
    exists: Callable[[str], bool] | None = None,
    check_labels_used: bool = False,
) -> Annotations:
    """Read and validate a dataset's annotations, reporting every problem in one error.

    ``source``: a list file (``.txt`` or anything not ``.csv``), a video CSV (``.csv``), a class
    folder, or in-memory entries. ``labels``: a labels CSV path or class names (for a class folder
    the folder names are used when omitted). ``exists(path)`` checks that each video is present
    (missing files are problems too).
    """
    problems = ProblemCollector()
    class_names: list[str] | None = None
    if labels is not None:
        if isinstance(labels, (str, os.PathLike)):
            try:
                class_names = collect_labels_csv(
                    read_annotation_text(labels), str(labels), problems
                )
            except FileNotFoundError as e:
                problems.add(str(labels), None, str(e))
        else:
            class_names = [str(n) for n in labels]
    k = num_classes
    if class_names is not None:
        if num_classes is not None and num_classes != len(class_names):
            problems.add(
                str(labels), None, f"{len(class_names)} classes but num_classes={num_classes}"
            )
        k = len(class_names) if k is None else k

    entries: list[VideoEntry] = []
    if isinstance(source, (str, os.PathLike)):
        src = Path(source)
        if src.is_dir():
            try:
                entries, folder_classes = scan_class_folders(src)
            except AnnotationError as e:
                problems.items += e.problems
                folder_classes = []
            if class_names is None:
                class_names, k = folder_classes, len(folder_classes)
            elif folder_classes and list(folder_classes) != list(class_names):
                problems.add(
                    str(src),
                    None,
                    f"class folders {folder_classes[:5]}... differ from the labels' names",
                )
        elif not src.is_file():
            problems.add(str(src), None, "annotation file not found")
        elif src.suffix.lower() == ".csv":
            text = read_annotation_text(src)
            entries = collect_video_csv(text, str(src), class_names, k, None, None, problems)
        else:
            entries = collect_video_list(read_annotation_text(src), str(src), k, problems)
    else:
        for i, e in enumerate(source):
            ve = (
                e
                if isinstance(e, VideoEntry)
                else VideoEntry(str(e[0]), int(e[1]), "<entries>", i + 1)
            )
            if check_label(ve.label, k, ve.source or "<entries>", ve.line, problems):
                entries.append(ve)
        if not entries and not problems.items:
            problems.add("<entries>", None, "empty video list")

    if exists is not None:
        for e in entries:
            if not exists(e.path):
                problems.add(e.source or "<entries>", e.line, f"video not found: {e.path}")
    if check_labels_used and k:
        unused = sorted(set(range(k)) - {e.label for e in entries})
        if unused:
            problems.add(str(source), None, f"{len(unused)} classes have no video: {unused[:20]}")
    problems.raise_if_any()
    return Annotations(entries, class_names)
