"""Labels CSV (the original's class list): header ``id,name``, then one class per row.

The ids must be ``0..K-1`` in file order, since class ``i`` is described by row ``i``'s name;
names that contain commas are quoted.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from .problems import ProblemCollector
from .text import read_annotation_text, write_annotation_text


def collect_labels_csv(text: str, source: str, problems: ProblemCollector) -> list[str]:
    """Class names (index = id) from labels-CSV text; problems are added to ``problems``, not
    raised, so that a caller can report them together with those of other files."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not any(cell.strip() for cell in rows[0]):
        problems.add(source, 1 if rows else None, "empty labels file (expected a header 'id,name')")
        return []
    header = [c.strip().lower() for c in rows[0]]
    if header != ["id", "name"]:
        problems.add(source, 1, f"header must be 'id,name', got {','.join(rows[0])!r}")
    names: list[str] = []
    ids: list[tuple[int, int]] = []  # (id, line)
    first_line: dict[int, int] = {}
    name_line: dict[str, int] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != 2:
            problems.add(
                source,
                lineno,
                f"expected 2 fields 'id,name', got {len(row)} ({','.join(row)!r}); quote names that contain commas",
            )
            continue
        sid, name = row[0].strip(), row[1].strip()
        try:
            cid = int(sid)
        except ValueError:
            problems.add(source, lineno, f"class id {sid!r} is not an integer")
            continue
        if not name:
            problems.add(source, lineno, f"class {cid} has an empty name")
        if cid in first_line:
            problems.add(
                source, lineno, f"duplicate class id {cid} (first on line {first_line[cid]})"
            )
            continue
        if name and name in name_line:
            problems.add(
                source, lineno, f"duplicate class name {name!r} (first on line {name_line[name]})"
            )
        first_line[cid] = lineno
        name_line.setdefault(name, lineno)
        ids.append((cid, lineno))
        names.append(name)
    if not ids:
        if len(rows) >= 1 and not problems.items:
            problems.add(source, None, "no classes (the file has only a header)")
        return names
    for pos, (cid, lineno) in enumerate(ids):
        if cid != pos:
            problems.add(
                source,
                lineno,
                f"class ids must be 0..K-1 in file order: expected id {pos}, got {cid}",
            )
            break
    return names


def parse_labels_csv(text: str, source: str = "<labels>") -> list[str]:
    """Class names (index = id) from labels-CSV text; raises :class:`AnnotationError`."""
    problems = ProblemCollector()
    names = collect_labels_csv(text, source, problems)
    problems.raise_if_any()
    return names


def read_labels_csv(path: str | os.PathLike) -> list[str]:
    """Class names (index = id) of a labels CSV file; raises :class:`AnnotationError`."""
    return parse_labels_csv(read_annotation_text(path), str(path))


def format_labels_csv(names: Sequence[str]) -> str:
    """Labels-CSV text for ``names`` (class ``i`` = ``names[i]``)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "name"])
    for i, n in enumerate(names):
        w.writerow([i, n])
    return buf.getvalue()


def write_labels_csv(path: str | os.PathLike, names: Sequence[str]) -> Path:
    """Write a labels CSV for ``names`` (parent folders created); returns the path."""
    return write_annotation_text(path, format_labels_csv(names))
