"""Video CSV: a header naming a path column and a label column, then one video per row.

Path column: ``path``/``filename``/``video``/``file``; label column:
``label``/``label_id``/``class``/``class_name``/``name`` (or the columns given). A label is an
integer class id, or otherwise a class name looked up in the labels.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence

from .entry import VideoEntry, check_label
from .problems import ProblemCollector
from .text import read_annotation_text

_PATH_COLUMNS = ("path", "filename", "video", "file")
_LABEL_COLUMNS = ("label", "label_id", "class", "class_name", "name")


def collect_video_csv(
    text: str,
    source: str,
    class_names: Sequence[str] | None,
    num_classes: int | None,
    path_column: str | None,
    label_column: str | None,
    problems: ProblemCollector,
) -> list[VideoEntry]:
    """The valid entries of video-CSV text; problems are added to ``problems``, not raised, so
    that a caller can report them together with those of other files."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        problems.add(source, None, "empty video CSV (expected a header such as 'path,label')")
        return []
    header = [c.strip().lower() for c in rows[0]]

    def find(wanted: str | None, options: Sequence[str], what: str) -> int | None:
        cands = [wanted.lower()] if wanted else list(options)
        for c in cands:
            if c in header:
                return header.index(c)
        problems.add(source, 1, f"no {what} column in header {rows[0]!r} (expected one of {cands})")
        return None

    pi = find(path_column, _PATH_COLUMNS, "path")
    li = find(label_column, _LABEL_COLUMNS, "label")
    if pi is None or li is None:
        return []
    lookup = {n: i for i, n in enumerate(class_names)} if class_names is not None else None
    k = num_classes if num_classes is not None else (len(class_names) if class_names else None)
    entries = []
    nrows = 0
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        nrows += 1
        if len(row) != len(header):
            problems.add(source, lineno, f"expected {len(header)} fields, got {len(row)}")
            continue
        path, slabel = row[pi].strip(), row[li].strip()
        if not path:
            problems.add(source, lineno, "empty path")
            continue
        if not slabel:
            problems.add(source, lineno, "empty label")
            continue
        if re.fullmatch(r"[+-]?\d+", slabel):
            label = int(slabel)
        elif lookup is None:
            problems.add(
                source,
                lineno,
                f"label {slabel!r} is a class name but no class names (labels CSV) were given",
            )
            continue
        elif slabel in lookup:
            label = lookup[slabel]
        else:
            problems.add(source, lineno, f"unknown class name {slabel!r}")
            continue
        if check_label(label, k, source, lineno, problems):
            entries.append(VideoEntry(path, label, source, lineno))
    if nrows == 0:
        problems.add(source, None, "empty video list (no rows after the header)")
    return entries


def parse_video_csv(
    text: str,
    source: str = "<csv>",
    class_names: Sequence[str] | None = None,
    num_classes: int | None = None,
    *,
    path_column: str | None = None,
    label_column: str | None = None,
) -> list[VideoEntry]:
    """Entries of video-CSV text (class names resolved with ``class_names``); raises
    :class:`AnnotationError`."""
    problems = ProblemCollector()
    entries = collect_video_csv(
        text, source, class_names, num_classes, path_column, label_column, problems
    )
    problems.raise_if_any()
    return entries


def read_video_csv(
    path: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    *,
    num_classes: int | None = None,
    path_column: str | None = None,
    label_column: str | None = None,
) -> list[VideoEntry]:
    """Entries of a video CSV file, as :func:`parse_video_csv`; raises :class:`AnnotationError`."""
    return parse_video_csv(
        read_annotation_text(path),
        str(path),
        class_names,
        num_classes,
        path_column=path_column,
        label_column=label_column,
    )
