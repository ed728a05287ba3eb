"""UCF-101 and HMDB-51 official train/test splits -> our list format (3 splits each).

The official files are read as published (UCF-101's ``ucfTrainTestlist``, HMDB-51's
``testTrainMulti_7030_splits``); class names and order follow the original X-CLIP label files.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xclip.data.annotations import VideoEntry, write_labels_csv, write_video_list
from xclip.data.annotations.problems import ProblemCollector
from xclip.data.annotations.text import read_annotation_text


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
    problems = ProblemCollector()
    ci = d / "classInd.txt"
    names: list[str] = []
    for lineno, line in enumerate(read_annotation_text(ci).splitlines(), start=1):
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
        for lineno, line in enumerate(read_annotation_text(tf).splitlines(), start=1):
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
        for lineno, line in enumerate(read_annotation_text(sf).splitlines(), start=1):
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
    problems = ProblemCollector()
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
            for lineno, line in enumerate(read_annotation_text(f).splitlines(), start=1):
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
