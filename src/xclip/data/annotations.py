"""Annotation files: parsers, writers, validation, and the evaluation protocols' split tools.

Formats
-------
* **List** (the original): one video per line, ``relative/path.mp4 <label_id>``, whitespace-split
  (so no spaces in file names). Blank lines are ignored.
* **Labels CSV** (the original): header ``id,name``; the ids must be ``0..K-1`` in file order,
  since class ``i`` is described by row ``i``'s name.
* **Video CSV**: a header naming a path column (``path``/``filename``/``video``/``file``) and a
  label column (``label``/``label_id``/``class``/``class_name``/``name``); a label is an integer
  id, or otherwise a class name looked up in the labels.
* **Folder per class**: ``root/<class>/<video>``; classes are the sorted folder names.

Every parser collects *all* problems (file and line number each) and raises one
:class:`AnnotationError`, so a broken list is reported completely before any training starts.

Protocol tools (pure functions plus writers; CLI: ``xclip-video splits``):
:func:`ucf101_splits`, :func:`hmdb51_splits` (official split files -> our list format, 3 splits),
:func:`kshot_entries` (seeded K videos per class), :func:`k600_novel_classes` and
:func:`k600_zeroshot_subsets` (Kinetics-600 classes not in Kinetics-400, seeded 160-class subsets).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xclip.data.video.files import VIDEO_EXTENSIONS

__all__ = [
    "K400_TO_K600_RENAMES",
    "VIDEO_EXTENSIONS",
    "AnnotationError",
    "Annotations",
    "NovelClasses",
    "Problem",
    "ProtocolSplits",
    "VideoEntry",
    "ZeroShotSubset",
    "format_labels_csv",
    "format_video_list",
    "hmdb51_splits",
    "k600_novel_classes",
    "k600_zeroshot_subsets",
    "kshot_entries",
    "load_annotations",
    "normalize_class_name",
    "parse_labels_csv",
    "parse_video_csv",
    "parse_video_list",
    "read_labels_csv",
    "read_video_csv",
    "read_video_list",
    "scan_class_folders",
    "ucf101_splits",
    "write_labels_csv",
    "write_video_list",
]

_PATH_COLUMNS = ("path", "filename", "video", "file")
_LABEL_COLUMNS = ("label", "label_id", "class", "class_name", "name")
_MAX_SHOWN = 50


# --- errors -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class AnnotationError(ValueError):
    """One or more problems in annotation files; ``problems`` lists them all (file, line, message)."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:_MAX_SHOWN])
        more = f"\n  ... and {n - _MAX_SHOWN} more" if n > _MAX_SHOWN else ""
        super().__init__(f"{n} annotation problem{'s' if n != 1 else ''}:\n{shown}{more}")

    @property
    def lines(self) -> list[int | None]:
        return [p.line for p in self.problems]


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, file: str, line: int | None, message: str) -> None:
        self.items.append(Problem(str(file), line, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise AnnotationError(self.items)


# --- entries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoEntry:
    """One annotated video: ``path`` relative to the dataset root (or absolute) and its label.
    ``source``/``line`` say where it was read from (not part of equality)."""

    path: str
    label: int
    source: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        if self.source is None:
            return "<entries>"
        return f"{self.source}:{self.line}" if self.line is not None else self.source


@dataclass
class Annotations:
    entries: list[VideoEntry]
    class_names: list[str] | None


def _read_text(path: str | os.PathLike) -> str:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"annotation file not found: {p}")
    return p.read_text(encoding="utf-8-sig")


def _lines(text: str) -> list[str]:
    return text.splitlines()


# --- labels CSV ---------------------------------------------------------------------------------


def _parse_labels(text: str, source: str, problems: _Problems) -> list[str]:
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
    problems = _Problems()
    names = _parse_labels(text, source, problems)
    problems.raise_if_any()
    return names


def read_labels_csv(path: str | os.PathLike) -> list[str]:
    return parse_labels_csv(_read_text(path), str(path))


def format_labels_csv(names: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "name"])
    for i, n in enumerate(names):
        w.writerow([i, n])
    return buf.getvalue()


def write_labels_csv(path: str | os.PathLike, names: Sequence[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(format_labels_csv(names), encoding="utf-8")
    return p


# --- list format --------------------------------------------------------------------------------


def _check_label(
    label: int, num_classes: int | None, source: str, lineno: int | None, problems: _Problems
) -> bool:
    if label < 0 or (num_classes is not None and label >= num_classes):
        rng = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        problems.add(source, lineno, f"label {label} out of range ({rng})")
        return False
    return True


def _parse_list(
    text: str, source: str, num_classes: int | None, problems: _Problems
) -> list[VideoEntry]:
    entries = []
    nonblank = 0
    for lineno, line in enumerate(_lines(text), start=1):
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
        if _check_label(label, num_classes, source, lineno, problems):
            entries.append(VideoEntry(path, label, source, lineno))
    if nonblank == 0:
        problems.add(source, None, "empty video list")
    return entries


def parse_video_list(
    text: str, source: str = "<list>", num_classes: int | None = None
) -> list[VideoEntry]:
    """Entries of the original list format; raises :class:`AnnotationError`."""
    problems = _Problems()
    entries = _parse_list(text, source, num_classes, problems)
    problems.raise_if_any()
    return entries


def read_video_list(path: str | os.PathLike, num_classes: int | None = None) -> list[VideoEntry]:
    return parse_video_list(_read_text(path), str(path), num_classes)


def format_video_list(entries: Iterable[VideoEntry | tuple[str, int]]) -> str:
    out = []
    for e in entries:
        path, label = (e.path, e.label) if isinstance(e, VideoEntry) else e
        if not path or any(c.isspace() for c in path):
            raise ValueError(
                f"path {path!r} is empty or contains whitespace (not allowed in a list file)"
            )
        out.append(f"{path} {int(label)}\n")
    return "".join(out)


def write_video_list(
    path: str | os.PathLike, entries: Iterable[VideoEntry | tuple[str, int]]
) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(format_video_list(entries), encoding="utf-8")
    return p


# --- video CSV ----------------------------------------------------------------------------------


def _parse_video_csv(
    text: str,
    source: str,
    class_names: Sequence[str] | None,
    num_classes: int | None,
    path_column: str | None,
    label_column: str | None,
    problems: _Problems,
) -> list[VideoEntry]:
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
        if _check_label(label, k, source, lineno, problems):
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
    problems = _Problems()
    entries = _parse_video_csv(
        text, source, class_names, num_classes, path_column, label_column, problems
    )
    problems.raise_if_any()
    return entries


def read_video_csv(
    path: str | os.PathLike, class_names: Sequence[str] | None = None, **kw
) -> list[VideoEntry]:
    return parse_video_csv(_read_text(path), str(path), class_names, **kw)


# --- folder per class ---------------------------------------------------------------------------


def scan_class_folders(
    root: str | os.PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS
) -> tuple[list[VideoEntry], list[str]]:
    """``root/<class>/**/<video>`` -> (entries with paths relative to root, sorted class names)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    exts = tuple(e.lower() for e in extensions)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    entries = []
    problems = _Problems()
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


# --- everything at once -------------------------------------------------------------------------


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
    problems = _Problems()
    class_names: list[str] | None = None
    if labels is not None:
        if isinstance(labels, (str, os.PathLike)):
            try:
                class_names = _parse_labels(_read_text(labels), str(labels), problems)
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
            text = src.read_text(encoding="utf-8-sig")
            entries = _parse_video_csv(text, str(src), class_names, k, None, None, problems)
        else:
            text = src.read_text(encoding="utf-8-sig")
            entries = _parse_list(text, str(src), k, problems)
    else:
        for i, e in enumerate(source):
            ve = (
                e
                if isinstance(e, VideoEntry)
                else VideoEntry(str(e[0]), int(e[1]), "<entries>", i + 1)
            )
            if _check_label(ve.label, k, ve.source or "<entries>", ve.line, problems):
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


# --- UCF-101 / HMDB-51 official splits ----------------------------------------------------------


@dataclass
class ProtocolSplits:
    """Class names and, per split number, (train entries, test entries)."""

    class_names: list[str]
    splits: dict[int, tuple[list[VideoEntry], list[VideoEntry]]]

    def write(self, out_dir: str | os.PathLike, labels_name: str) -> list[Path]:
        """Write ``labels_name`` (labels CSV) and ``train_split{k}.txt`` / ``test_split{k}.txt``."""
        out = Path(out_dir)
        written = [write_labels_csv(out / labels_name, self.class_names)]
        for k, (train, test) in sorted(self.splits.items()):
            written.append(write_video_list(out / f"train_split{k}.txt", train))
            written.append(write_video_list(out / f"test_split{k}.txt", test))
        return written


def ucf101_splits(
    official_dir: str | os.PathLike, splits: Sequence[int] = (1, 2, 3)
) -> ProtocolSplits:
    """UCF-101's ``ucfTrainTestlist`` folder (``classInd.txt``, ``trainlist0{k}.txt`` with 1-based
    labels, ``testlist0{k}.txt`` without) -> 0-based lists of ``Class/v_Class_gXX_cYY.avi``.
    Class names and order are classInd's (CamelCase, as the original's ``ucf_101_labels.csv``).
    The class of a video is its folder, matched case-insensitively (the official files spell
    ``HandstandPushups`` in classInd but ``v_HandStandPushups`` in file names)."""
    d = Path(official_dir)
    problems = _Problems()
    ci = d / "classInd.txt"
    names: list[str] = []
    for lineno, line in enumerate(_lines(_read_text(ci)), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            problems.add(
                str(ci), lineno, f"expected '<1-based id> <ClassName>', got {line.strip()!r}"
            )
            continue
        if int(parts[0]) != len(names) + 1:
            problems.add(str(ci), lineno, f"expected id {len(names) + 1}, got {parts[0]}")
        names.append(parts[1])
    problems.raise_if_any()
    by_lower = {n.lower(): i for i, n in enumerate(names)}

    def label_of(path: str, src: str, lineno: int) -> int | None:
        folder = path.replace("\\", "/").split("/")[0]
        if "/" not in path.replace("\\", "/") or folder.lower() not in by_lower:
            problems.add(
                src, lineno, f"cannot tell the class of {path!r} (expected 'ClassName/file.avi')"
            )
            return None
        return by_lower[folder.lower()]

    result: dict[int, tuple[list[VideoEntry], list[VideoEntry]]] = {}
    for k in splits:
        train, test = [], []
        tf, sf = d / f"trainlist0{k}.txt", d / f"testlist0{k}.txt"
        for lineno, line in enumerate(_lines(_read_text(tf)), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit():
                problems.add(
                    str(tf), lineno, f"expected '<path> <1-based label>', got {line.strip()!r}"
                )
                continue
            lab = label_of(parts[0], str(tf), lineno)
            if lab is None:
                continue
            if int(parts[1]) - 1 != lab:
                problems.add(
                    str(tf),
                    lineno,
                    f"label {parts[1]} disagrees with class folder {parts[0].split('/')[0]!r} ({lab + 1})",
                )
                continue
            train.append(VideoEntry(parts[0].replace("\\", "/"), lab, str(tf), lineno))
        for lineno, line in enumerate(_lines(_read_text(sf)), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 1:
                problems.add(str(sf), lineno, f"expected '<path>', got {line.strip()!r}")
                continue
            lab = label_of(parts[0], str(sf), lineno)
            if lab is not None:
                test.append(VideoEntry(parts[0].replace("\\", "/"), lab, str(sf), lineno))
        if not train:
            problems.add(str(tf), None, "no training videos")
        if not test:
            problems.add(str(sf), None, "no test videos")
        result[k] = (train, test)
    problems.raise_if_any()
    return ProtocolSplits(names, result)


_HMDB_SPLIT = re.compile(r"^(?P<cls>.+)_test_split(?P<k>\d)\.txt$")


def hmdb51_splits(
    official_dir: str | os.PathLike, splits: Sequence[int] = (1, 2, 3)
) -> ProtocolSplits:
    """HMDB-51's ``testTrainMulti_7030_splits`` folder (``<class>_test_split{k}.txt`` with lines
    ``video.avi <0|1|2>``: 1 = train, 2 = test, 0 = unused) -> lists of ``<class>/video.avi``.

    Classes are ordered by their sorted split-file names (which puts ``kick_ball`` before
    ``kick``, as the original's ``hmdb_51_labels.csv``); names have ``_`` replaced by spaces."""
    d = Path(official_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"HMDB-51 split folder not found: {d}")
    problems = _Problems()
    files: dict[int, dict[str, Path]] = defaultdict(dict)
    for p in sorted(d.iterdir()):
        m = _HMDB_SPLIT.match(p.name)
        if m:
            files[int(m["k"])][m["cls"]] = p
    first = min(splits)
    if not files.get(first):
        raise FileNotFoundError(f"no '<class>_test_split{first}.txt' files in {d}")
    folders = [c for c in sorted(files[first], key=lambda c: f"{c}_test_split{first}.txt")]
    label = {c: i for i, c in enumerate(folders)}
    result = {}
    for k in splits:
        if set(files.get(k, {})) != set(folders):
            missing = sorted(set(folders) - set(files.get(k, {})))
            extra = sorted(set(files.get(k, {})) - set(folders))
            problems.add(
                str(d), None, f"split {k}: missing classes {missing[:10]}, extra {extra[:10]}"
            )
            continue
        train, test = [], []
        for c in folders:
            f = files[k][c]
            for lineno, line in enumerate(_lines(_read_text(f)), start=1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    problems.add(
                        str(f), lineno, f"expected '<video.avi> <0|1|2>', got {line.strip()!r}"
                    )
                    continue
                e = VideoEntry(f"{c}/{parts[0]}", label[c], str(f), lineno)
                if parts[1] == "1":
                    train.append(e)
                elif parts[1] == "2":
                    test.append(e)
        result[k] = (train, test)
    problems.raise_if_any()
    return ProtocolSplits([c.replace("_", " ") for c in folders], result)


# --- few-shot -----------------------------------------------------------------------------------


def kshot_entries(
    entries: Sequence[VideoEntry], k: int, seed: int = 0, *, allow_fewer: bool = False
) -> list[VideoEntry]:
    """K videos per class drawn at random (``numpy.random.default_rng(seed)``, classes in label
    order, without replacement); the result keeps the input order. A class with fewer than K
    videos is an error unless ``allow_fewer`` (then all its videos are kept)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        by_class[e.label].append(i)
    if not by_class:
        raise ValueError("no videos to sample from")
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    short = []
    for label in sorted(by_class):
        idx = by_class[label]
        if len(idx) < k:
            if not allow_fewer:
                short.append(f"{label} ({len(idx)})")
                continue
            keep += idx
        else:
            keep += [idx[j] for j in rng.choice(len(idx), size=k, replace=False)]
    if short:
        raise ValueError(
            f"{len(short)} classes have fewer than k={k} videos: {', '.join(short[:20])}"
        )
    return [entries[i] for i in sorted(keep)]


# --- Kinetics-600 zero-shot ---------------------------------------------------------------------

# Kinetics-400 classes that Kinetics-600 renamed (a qualifier added or a spelling fixed). Exact
# name matching (after case/whitespace normalisation) with the original's label files finds 231
# K600 classes not in K400; treating these 11 as the same class gives the 220 of ER-ZSAR and the
# X-CLIP paper. This table is our reconstruction (no official list of the 220 classes exists,
# VideoX issues #79 and #128); pass ``renames={}`` for plain name matching.
K400_TO_K600_RENAMES: dict[str, str] = {
    "baby waking up": "waking up",
    "balloon blowing": "inflating balloons",
    "changing wheel": "changing wheel (not on bike)",
    "cooking sausages": "cooking sausages (not on barbeque)",
    "dying hair": "dyeing hair",
    "garbage collecting": "person collecting garbage",
    "hugging": "hugging (not baby)",
    "making bed": "making the bed",
    "opening bottle": "opening bottle (not wine)",
    "throwing ball": "throwing ball (not baseball or American football)",
    "tying tie": "tying necktie",
}


def normalize_class_name(name: str) -> str:
    """Lower case, ``_`` as space, single spaces, no surrounding quotes."""
    return " ".join(name.strip().strip("\"'").replace("_", " ").lower().split())


@dataclass
class NovelClasses:
    """K600 classes not in K400, in K600 label order, with what the matching did."""

    novel: list[str]  # K600 names
    novel_ids: list[int]  # their K600 ids
    renamed: list[tuple[str, str]]  # (K400 name, K600 name) treated as the same class
    dropped_k400: list[str]  # K400 classes with no K600 counterpart
    unused_renames: list[tuple[str, str]]  # table entries that matched nothing

    def report(self) -> str:
        lines = [f"{len(self.novel)} Kinetics-600 classes are not in Kinetics-400"]
        if self.renamed:
            lines.append(
                f"{len(self.renamed)} renamed K400 classes counted as seen: "
                + "; ".join(f"{a!r} -> {b!r}" for a, b in self.renamed)
            )
        if self.dropped_k400:
            lines.append(
                f"{len(self.dropped_k400)} K400 classes have no K600 counterpart: "
                + ", ".join(self.dropped_k400)
            )
        if self.unused_renames:
            lines.append(
                "rename entries that matched nothing: "
                + "; ".join(f"{a!r} -> {b!r}" for a, b in self.unused_renames)
            )
        if len(self.novel) != 220:
            lines.append(
                f"note: the paper (following ER-ZSAR) uses 220 new classes, this gives {len(self.novel)} "
                "(cf. VideoX issue #128, which got 221); check the renames above, or pass --expect/--exclude"
            )
        return "\n".join(lines)


def k600_novel_classes(
    k400_names: Sequence[str],
    k600_names: Sequence[str],
    renames: Mapping[str, str] | None = None,
    *,
    exclude: Iterable[str] = (),
) -> NovelClasses:
    """K600 classes whose normalised name is neither a K400 name nor the K600 name of a renamed
    K400 class (``renames``, default :data:`K400_TO_K600_RENAMES`); ``exclude`` removes more
    K600 classes from the novel set (by name)."""
    renames = K400_TO_K600_RENAMES if renames is None else renames
    n400 = {normalize_class_name(n) for n in k400_names}
    n600 = {normalize_class_name(n): i for i, n in enumerate(k600_names)}
    seen = set(n400)
    renamed, unused = [], []
    for a, b in renames.items():
        na, nb = normalize_class_name(a), normalize_class_name(b)
        if na in n400 and nb in n600 and na not in n600:
            seen.add(nb)
            renamed.append((a, k600_names[n600[nb]]))
        else:
            unused.append((a, b))
    excl = {normalize_class_name(x) for x in exclude}
    bad_excl = sorted(excl - set(n600))
    if bad_excl:
        raise ValueError(f"--exclude classes not in the K600 labels: {bad_excl}")
    novel_ids = [i for i, n in enumerate(k600_names) if normalize_class_name(n) not in seen | excl]
    dropped = [
        n for n in k400_names
        if normalize_class_name(n) not in n600 and normalize_class_name(n) not in {normalize_class_name(a) for a, _ in renamed}
    ]  # fmt: skip
    return NovelClasses([k600_names[i] for i in novel_ids], novel_ids, renamed, dropped, unused)


@dataclass
class ZeroShotSubset:
    index: int
    k600_ids: list[int]  # sorted K600 ids of the chosen classes; new id j = position in this list
    class_names: list[str]
    entries: list[VideoEntry]  # relabelled 0..size-1

    def write(self, out_dir: str | os.PathLike, prefix: str = "k600_zeroshot") -> list[Path]:
        out = Path(out_dir)
        return [
            write_labels_csv(out / f"{prefix}_labels_{self.index}.csv", self.class_names),
            write_video_list(out / f"{prefix}_list_{self.index}.txt", self.entries),
        ]


def k600_zeroshot_subsets(
    novel: NovelClasses,
    k600_names: Sequence[str],
    k600_entries: Sequence[VideoEntry] | None = None,
    *,
    num_subsets: int = 3,
    size: int = 160,
    seed: int = 0,
) -> list[ZeroShotSubset]:
    """``num_subsets`` random ``size``-class subsets of the novel classes (``default_rng(seed)``,
    ``choice`` without replacement, then sorted by K600 id); videos of ``k600_entries`` (labelled
    with K600 ids) whose class is in a subset are kept and relabelled ``0..size-1``."""
    if size > len(novel.novel_ids):
        raise ValueError(f"cannot draw {size} classes from {len(novel.novel_ids)} novel classes")
    rng = np.random.default_rng(seed)
    out = []
    for s in range(num_subsets):
        pick = sorted(
            novel.novel_ids[j] for j in rng.choice(len(novel.novel_ids), size, replace=False)
        )
        new = {k6: j for j, k6 in enumerate(pick)}
        ents = []
        for e in k600_entries or ():
            if e.label in new:
                ents.append(VideoEntry(e.path, new[e.label], e.source, e.line))
        out.append(ZeroShotSubset(s, pick, [k600_names[i] for i in pick], ents))
    return out
