"""Write the demo's video dataset: real mp4 files, annotation lists and labels CSVs.

Layout under ``OUT`` (the formats real datasets use, see ``docs/data.md``)::

    videos/<class>/<class>_<split>_<i>.mp4      MPEG-4 Part 2 mp4 clips (byte-reproducible; x264 output is not)
    labels.csv                                  the video-training classes (id,name)
    train.txt, val.txt                          "relative/path.mp4 <label_id>" lists
    heldout/labels.csv                          the held-out classes (zero-/few-shot), ids 0..K-1
    heldout/test.txt                            their test videos
    heldout/train_pool.txt                      the few-shot pool (K videos per class drawn from it)
    dataset.json                                classes, pairs, counts, the generator's settings

Classes are ``"a <colour> object <motion>"``. Each (colour, reversal pair) cell gives two classes.
For every colour one pair is held out of video training (colour *i* with pair *i*): the held-out
classes are novel combinations of words the training classes use, so they test zero-shot
transfer; the same classes (other videos) are the few-shot set.

Every clip of the second verb of a pair is a clip of the first verb played backwards: for each
generated forward clip both it and its exact reversal are written, to the same split.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from xclip.data import synthetic
from xclip.data.annotations import write_labels_csv, write_video_list

from .world import COLOURS, PAIRS, class_name, render_clip, sample_clip_params

__all__ = [
    "ClipJob",
    "DataSpec",
    "class_table",
    "generate_dataset",
    "generate_heldout_test",
    "slug",
    "write_clip_pair",
]


@dataclass(frozen=True)
class DataSpec:
    """How much data, how it looks, and the seed that fixes every pixel."""

    seed: int = 0
    train_per_class: int = 16  # video-training classes
    val_per_class: int = 6
    pool_per_class: int = 4  # held-out classes: few-shot pool (>= the largest K)
    test_per_class: int = 8  # held-out classes: zero-/few-shot test videos
    num_frames: int = 16
    size: int = 48  # frame width = height, pixels
    fps: int = 8
    distractor_p: float = 0.5


def slug(name: str) -> str:
    """A class name as a folder name: ``"a red object moving up"`` -> ``"red_object_moving_up"``."""
    return name.removeprefix("a ").replace(" ", "_")


def class_table() -> list[dict]:
    """Every class: name, colour, motion, pair index, direction (0 = forward verb), held-out flag."""
    rows = []
    for ci, colour in enumerate(COLOURS):
        for pi, pair in enumerate(PAIRS):
            for d, motion in enumerate(pair):
                rows.append(
                    {"name": class_name(colour, motion), "colour": colour, "motion": motion,
                     "pair": pi, "direction": d, "heldout": pi == ci % len(PAIRS)}
                )  # fmt: skip
    return rows


class ClipJob(NamedTuple):
    """One forward clip of the dataset and its reversal (a plain tuple, to cross a process pool)."""

    out: str  # the dataset folder
    spec: DataSpec
    seed: Sequence[int]  # the clip's own seed: [spec.seed, colour, pair, split, index] (indices)
    colour: str
    pair: int  # index into PAIRS
    split: str  # "train", "val", "pool" or "test"
    index: int  # the clip's number within its class and split
    labels: Sequence[int]  # the label ids of the forward and of the reversed class


def write_clip_pair(job: ClipJob) -> list[tuple[str, str, int]]:
    """Render one forward clip and write it and its exact reversal (``frames[::-1]``) with
    :func:`xclip.data.synthetic.write_video`; returns ``(split, relative path, label id)`` of
    both."""
    out, spec, cell_seed, colour, pair, split, i, rows_idx = job
    rng = np.random.default_rng(cell_seed)
    p = sample_clip_params(rng, pair, colour, spec.distractor_p)
    frames = render_clip(p, rng, spec.num_frames, spec.size)
    written = []
    for direction, clip in ((0, frames), (1, frames[::-1])):
        name = class_name(colour, PAIRS[pair][direction])
        rel = f"{slug(name)}/{slug(name)}_{split}_{i:03d}.mp4"
        path = Path(out) / "videos" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # MPEG-4 Part 2: its encoder output is byte-reproducible from the seed (x264's is not)
        synthetic.write_video(path, np.ascontiguousarray(clip), fps=spec.fps, codec="mpeg4",
                              gop=spec.num_frames)  # fmt: skip
        written.append((split, rel, rows_idx[direction]))
    return written


def _class_ids() -> tuple[list[str], list[str], dict[str, int], dict[str, int]]:
    table = class_table()
    train_names = [r["name"] for r in table if not r["heldout"]]
    held_names = [r["name"] for r in table if r["heldout"]]
    return (
        train_names,
        held_names,
        {n: i for i, n in enumerate(train_names)},
        {n: i for i, n in enumerate(held_names)},
    )


def _write_clips(jobs: list[ClipJob], workers: int,
                 progress: Callable[[int, int], None] | None) -> list[tuple[str, str, int]]:  # fmt: skip
    results: list[tuple[str, str, int]] = []
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            for k, r in enumerate(pool.imap(write_clip_pair, jobs, chunksize=8), 1):
                results.extend(r)
                if progress:
                    progress(k, len(jobs))
    else:
        for k, job in enumerate(jobs, 1):
            results.extend(write_clip_pair(job))
            if progress:
                progress(k, len(jobs))
    return results


def _clip_seed(spec: DataSpec, colour: int, pair: int, split: str, index: int) -> list[int]:
    # one seed per clip: the clip does not depend on the other sizes or on order
    return [spec.seed, colour, pair, ["train", "val", "pool", "test"].index(split), index]


def generate_dataset(
    out: str | os.PathLike,
    spec: DataSpec = DataSpec(),
    *,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write the dataset under ``out`` (see the module docstring); returns ``dataset.json``'s dict."""
    out = Path(out)
    t0 = time.perf_counter()
    table = class_table()
    train_names, held_names, tid, hid = _class_ids()
    jobs = []
    for ci, colour in enumerate(COLOURS):
        for pi, pair in enumerate(PAIRS):
            held = pi == ci % len(PAIRS)
            names = [class_name(colour, m) for m in pair]
            ids = [hid[n] for n in names] if held else [tid[n] for n in names]
            splits = (
                (("pool", spec.pool_per_class), ("test", spec.test_per_class))
                if held
                else (("train", spec.train_per_class), ("val", spec.val_per_class))
            )
            for split, n in splits:
                for i in range(n):
                    seed = _clip_seed(spec, ci, pi, split, i)
                    jobs.append(ClipJob(str(out), spec, seed, colour, pi, split, i, ids))
    results = _write_clips(jobs, workers, progress)
    lists: dict[str, list[tuple[str, int]]] = {s: [] for s in ("train", "val", "pool", "test")}
    for split, rel, label in results:
        lists[split].append((rel, label))
    for v in lists.values():
        v.sort()
    write_labels_csv(out / "labels.csv", train_names)
    write_video_list(out / "train.txt", lists["train"])
    write_video_list(out / "val.txt", lists["val"])
    (out / "heldout").mkdir(parents=True, exist_ok=True)
    write_labels_csv(out / "heldout" / "labels.csv", held_names)
    write_video_list(out / "heldout" / "test.txt", lists["test"])
    write_video_list(out / "heldout" / "train_pool.txt", lists["pool"])
    meta = {
        "spec": asdict(spec),
        "classes": table,
        "train_classes": train_names,
        "heldout_classes": held_names,
        "pairs": [list(p) for p in PAIRS],
        "colours": list(COLOURS),
        "counts": {k: len(v) for k, v in lists.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def generate_heldout_test(
    out: str | os.PathLike,
    spec: DataSpec,
    per_class: int,
    *,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write a larger test set of the held-out classes under ``out``: ``per_class`` test clips
    per class, the clips :func:`generate_dataset` writes with ``test_per_class=per_class`` (the
    first ``spec.test_per_class`` of them are bit for bit the dataset's own test clips), with
    ``heldout/labels.csv`` and ``heldout/test.txt``. The demo's studies measure zero-shot on it;
    the dataset itself, and so every other number of the demo, stays as it is."""
    out = Path(out)
    _, held_names, _, hid = _class_ids()
    jobs = []
    for ci, colour in enumerate(COLOURS):
        pi = ci % len(PAIRS)
        ids = [hid[class_name(colour, m)] for m in PAIRS[pi]]
        for i in range(per_class):
            seed = _clip_seed(spec, ci, pi, "test", i)
            jobs.append(ClipJob(str(out), spec, seed, colour, pi, "test", i, ids))
    results = _write_clips(jobs, workers, progress)
    (out / "heldout").mkdir(parents=True, exist_ok=True)
    write_labels_csv(out / "heldout" / "labels.csv", held_names)
    write_video_list(out / "heldout" / "test.txt", sorted((rel, lab) for _, rel, lab in results))
    return {"heldout_classes": held_names, "test_videos": len(results), "per_class": per_class}
