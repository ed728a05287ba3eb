"""Kinetics-600 zero-shot protocol: the K600 classes not in Kinetics-400 and seeded subsets of them.

The paper (following ER-ZSAR) evaluates on 3 random 160-class subsets of the 220 K600 classes
that are not in K400; see docs/data.md for how the 220 are reconstructed.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xclip.data.annotations import VideoEntry, write_labels_csv, write_video_list
from xclip.errors import InputError

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


def read_renames_csv(path: str | os.PathLike) -> dict[str, str]:
    """A K400 -> K600 rename table from a CSV of ``k400_name,k600_name`` rows (an optional
    header ``k400,k600`` or ``k400_name,k600_name``); blank rows are ignored."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--renames file not found: {p}")
    with p.open(encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0]] in (
        ["k400", "k600"],
        ["k400_name", "k600_name"],
    ):
        rows = rows[1:]
    bad = [i + 1 for i, r in enumerate(rows) if len(r) != 2]
    if bad:
        raise InputError(f"{p}: lines {bad} are not 'k400_name,k600_name'")
    return {a.strip(): b.strip() for a, b in rows}


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
        """What was matched, in words: the count, renames applied, K400 classes dropped."""
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
        raise InputError(f"--exclude classes not in the K600 labels: {bad_excl}")
    novel_ids = [i for i, n in enumerate(k600_names) if normalize_class_name(n) not in seen | excl]
    dropped = [
        n for n in k400_names
        if normalize_class_name(n) not in n600 and normalize_class_name(n) not in {normalize_class_name(a) for a, _ in renamed}
    ]  # fmt: skip
    return NovelClasses([k600_names[i] for i in novel_ids], novel_ids, renamed, dropped, unused)


@dataclass
class ZeroShotSubset:
    """One seeded subset of the novel classes and its videos, relabelled ``0..size-1``."""

    index: int
    k600_ids: list[int]  # sorted K600 ids of the chosen classes; new id j = position in this list
    class_names: list[str]
    entries: list[VideoEntry]  # relabelled 0..size-1

    def write(self, out_dir: str | os.PathLike, prefix: str = "k600_zeroshot") -> list[Path]:
        """Write ``{prefix}_labels_{index}.csv`` (labels CSV) and ``{prefix}_list_{index}.txt``."""
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
        raise InputError(f"cannot draw {size} classes from {len(novel.novel_ids)} novel classes")
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
