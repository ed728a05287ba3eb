"""A miniature generated video dataset for tests, docs and smoke runs (no downloads).

``python -m xclip_app.train.toydata OUT`` writes, under ``OUT``:

* ``videos/<class>/<class>_<i>.mp4``: tiny clips (48x40, 16 frames, h264) whose class is visible:
  each class has its own colour and motion, so even the tiny test model learns it in seconds;
* ``labels.csv`` (``id,name``), ``train.txt`` and ``val.txt`` in the original list format;
* ``splits/``: a UCF-101-like protocol layout: ``test_split{1,2,3}.txt`` (different videos per
  split), ``train_split1.txt``, and ``labels_subset{1,2,3}.csv`` + ``list_subset{1,2,3}.txt``, a
  K600-like zero-shot layout (random class subsets relabelled ``0..n-1``).

The frames are this module's own content; encoding goes through the shared
:func:`xclip.data.synthetic.write_video`, the lists and CSVs through :mod:`xclip.data.annotations`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xclip.data.annotations import write_labels_csv, write_video_list
from xclip.data.synthetic import write_video
from xclip.errors import InputError

CLASSES = ["red", "green", "blue", "yellow"]
_COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 60, 220),
    "yellow": (230, 220, 30),
}


def _frames(
    cls: int, i: int, num_frames: int, size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Clip ``i`` of class ``cls``: uint8 ``[T, H, W, 3]``, a square of the class colour moving
    across a dark noisy background."""
    w, h = size
    name = CLASSES[cls % len(CLASSES)]
    colour = np.array(_COLOURS[name], np.float32)
    out = np.empty((num_frames, h, w, 3), np.uint8)
    bg = rng.integers(20, 80, size=3).astype(np.float32)
    sq = max(6, h // 3)
    for t in range(num_frames):
        frame = np.empty((h, w, 3), np.float32)
        frame[...] = bg
        # class-specific motion: horizontal for even classes, vertical for odd
        p = (t + i) % max(1, num_frames)
        if cls % 2 == 0:
            x0, y0 = int((w - sq) * p / max(1, num_frames - 1)), (h - sq) // 2
        else:
            x0, y0 = (w - sq) // 2, int((h - sq) * p / max(1, num_frames - 1))
        frame[y0 : y0 + sq, x0 : x0 + sq] = colour
        frame += rng.normal(0, 6, frame.shape)
        out[t] = frame.clip(0, 255).astype(np.uint8)
    return out


def make_toy_dataset(
    out: str | Path,
    num_classes: int = 4,
    train_per_class: int = 6,
    val_per_class: int = 3,
    num_frames: int = 16,
    size: tuple[int, int] = (48, 40),
    seed: int = 0,
) -> dict[str, Path]:
    """Write the dataset (see the module docstring); returns the paths of its files."""
    if not 1 <= num_classes <= len(CLASSES):
        raise InputError(f"num_classes must be in 1..{len(CLASSES)}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    names = CLASSES[:num_classes]
    train, val = [], []
    per = train_per_class + val_per_class
    for c, name in enumerate(names):
        for i in range(per):
            rel = f"{name}/{name}_{i:02d}.mp4"
            path = out / "videos" / rel
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, _frames(c, i, num_frames, size, rng), fps=8, codec="h264", gop=8)
            (train if i < train_per_class else val).append((rel, c))
    files = {
        "root": out / "videos",
        "labels": write_labels_csv(out / "labels.csv", names),
        "train": write_video_list(out / "train.txt", train),
        "val": write_video_list(out / "val.txt", val),
    }
    # UCF-like: three test splits drawn from all videos, split-1 train list = the rest
    sp = out / "splits"
    allv = train + val
    for k in (1, 2, 3):
        test = [e for j, e in enumerate(allv) if j % 3 == k - 1]
        files[f"test_split{k}"] = write_video_list(sp / f"test_split{k}.txt", test)
        if k == 1:
            files["train_split1"] = write_video_list(
                sp / "train_split1.txt", [e for e in allv if e not in test]
            )
    # K600-like zero-shot subsets: a random subset of classes relabelled 0..n-1
    n_sub = max(2, num_classes - 1)
    for k in (1, 2, 3):
        chosen = sorted(rng.choice(num_classes, n_sub, replace=False).tolist())
        remap = {c: j for j, c in enumerate(chosen)}
        files[f"labels_subset{k}"] = write_labels_csv(
            sp / f"labels_subset{k}.csv", [names[c] for c in chosen]
        )
        files[f"list_subset{k}"] = write_video_list(
            sp / f"list_subset{k}.txt", [(p, remap[c]) for p, c in val if c in remap]
        )
    return files


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="output folder")
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--train-per-class", type=int, default=6)
    p.add_argument("--val-per-class", type=int, default=3)
    args = p.parse_args(argv)
    files = make_toy_dataset(args.out, args.classes, args.train_per_class, args.val_per_class)
    for k, v in files.items():
        print(f"{k:>14}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
