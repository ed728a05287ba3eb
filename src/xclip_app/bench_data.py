"""Data-loading benchmark: clips/s per worker for TSN sparse test sampling.

Reported per backend: median process CPU time per clip (all threads; the per-worker cost, robust
to other jobs on a shared machine), the clips/s it gives, and the median wall time.

Generates Kinetics-like clips once (10 s, 30 fps, bar-coded frames; 320x240 h264 with a keyframe
every 30 and every 250 frames, mpeg4, and a 1280x720 h264 clip), then times, per clip and for
N = 8 and 32 frames, the whole per-sample path of a DataLoader worker: open the file, read the
metadata, compute the segment-centre indices ``int((i + 0.5) * n / N)``, decode them to uint8 RGB
``[N, H, W, 3]`` (and optionally run a transforms callable), close. Backends are interleaved within
each repeat and the median is reported; every returned frame is checked against its bar code, and
the frames of each backend are compared pixel by pixel with the default backend's.

Per-worker figures: run on one core with one decoding thread::

    taskset -c 0 xclip-video bench data

A decode + transforms stage is timed too: by default the paper's training transforms at 224 px
(``--transforms train``: resize, MultiScaleCrop, flip, per-frame colour jitter, grayscale,
normalise); ``--transforms none`` skips it and ``--transforms module:function`` names another
callable taking the uint8 ``[N, H, W, 3]`` numpy clip. DataLoader throughput is measured with
1 and 2 workers by default (``--dataloader-workers``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CLIPS = {
    # name: (size, gop, codec, container)
    "h264_320x240_gop30": ((320, 240), 30, "h264", "mp4"),
    "h264_320x240_gop250": ((320, 240), 250, "h264", "mp4"),
    "mpeg4_320x240_gop30": ((320, 240), 30, "mpeg4", "mp4"),
    "h264_1280x720_gop250": ((1280, 720), 250, "h264", "mp4"),
}
DEFAULT_CLIPS = list(CLIPS)


def segment_centres(num_frames: int, n: int) -> list[int]:
    """TSN test sampling: the centre frame of each of ``n`` equal segments."""
    return [int((i + 0.5) * num_frames / n) for i in range(n)]


def make_clips(directory: str, names: Sequence[str], seconds: float = 10, fps: int = 30) -> dict:
    from xclip.data.synthetic import make_indexed_clip

    os.makedirs(directory, exist_ok=True)
    paths = {}
    for name in names:
        size, gop, codec, ext = CLIPS[name]
        path = os.path.join(directory, f"{name}.{ext}")
        if not os.path.exists(path):
            t0 = time.perf_counter()
            tmp = path + ".tmp." + ext
            make_indexed_clip(tmp, int(seconds * fps), size=size, fps=fps, gop=gop, codec=codec)
            os.replace(tmp, path)
            print(f"  generated {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        paths[name] = path
    return paths


@dataclass
class Result:
    clip: str
    n: int
    stage: str
    backend: str
    times: list[float]  # wall seconds
    cpu_times: list[float]  # process CPU seconds (all threads), robust to other jobs' load
    wrong_frames: int
    max_abs_diff: int | None  # vs. the reference backend's frames

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_times)


def _read_clip(backend: str, path: str, n: int, threads: int, transforms: Callable | None):
    from xclip.data.video import open_video

    with open_video(path, backend, num_threads=threads) as reader:
        idx = segment_centres(reader.num_frames, n)
        frames = reader.get_frames(idx)
    out = transforms(frames) if transforms is not None else None
    return idx, frames, out


def run(
    paths: dict,
    ns: Sequence[int] = (8, 32),
    backends: Sequence[str] = ("pyav", "decord"),
    repeats: int = 7,
    repeats_large: int = 3,
    threads: int = 1,
    transforms: Callable | None = None,
) -> list[Result]:
    from xclip.data.synthetic import read_frame_index

    stages = ["decode"] + (["decode+transforms"] if transforms is not None else [])
    results: list[Result] = []
    for name, path in paths.items():
        large = CLIPS.get(name, ((0, 0),))[0][0] > 640
        for n in ns:
            for stage in stages:
                tf = transforms if stage != "decode" else None
                ref = None
                per: dict[str, Result] = {}
                # warm-up + correctness check
                for b in backends:
                    idx, frames, _ = _read_clip(b, path, n, threads, tf)
                    wrong = sum(read_frame_index(f) != i for f, i in zip(frames, idx, strict=True))
                    diff = None
                    if ref is None:
                        ref = frames
                    elif ref.shape == frames.shape:
                        diff = int(np.abs(ref.astype(np.int16) - frames.astype(np.int16)).max())
                    per[b] = Result(name, n, stage, b, [], [], wrong, diff)
                reps = repeats_large if large else repeats
                for r in range(reps):
                    order = (
                        list(backends)[r % len(backends) :] + list(backends)[: r % len(backends)]
                    )
                    for b in order:
                        t0, c0 = time.perf_counter(), time.process_time()
                        _read_clip(b, path, n, threads, tf)
                        per[b].cpu_times.append(time.process_time() - c0)
                        per[b].times.append(time.perf_counter() - t0)
                results.extend(per.values())
    return results


def format_table(results: list[Result], backends: Sequence[str]) -> str:
    rows = {}
    for r in results:
        rows.setdefault((r.clip, r.n, r.stage), {})[r.backend] = r
    head = ["clip", "N", "stage"] + [f"{b} CPU ms / clips/s (wall ms)" for b in backends]
    if len(backends) > 1:
        head.append(f"{backends[0]} vs {backends[1]} (CPU; wall)")
    head.append("wrong frames")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (clip, n, stage), per in rows.items():
        cells = [clip, str(n), stage]
        for b in backends:
            r = per.get(b)
            cells.append(
                f"{r.cpu_median * 1e3:.1f} / {1 / r.cpu_median:.1f} ({r.median * 1e3:.0f})"
                if r
                else "-"
            )
        if len(backends) > 1 and backends[0] in per and backends[1] in per:
            a, b2 = per[backends[0]], per[backends[1]]
            cells.append(f"{b2.cpu_median / a.cpu_median:.2f}x; {b2.median / a.median:.2f}x")
        wrong = ", ".join(
            f"{b}:{per[b].wrong_frames}"
            + ("" if per[b].max_abs_diff is None else f" (max|Δpix| {per[b].max_abs_diff})")
            for b in backends
            if b in per
        )
        cells.append(wrong)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


class ClipDataset:
    """Minimal map-style dataset for the DataLoader stage: TSN centres of one clip per item."""

    def __init__(self, paths, n, backend="auto", threads=1, transforms=None, length=64):
        self.paths, self.n, self.backend = list(paths), n, backend
        self.threads, self.transforms, self.length = threads, transforms, length

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        import torch

        from xclip.data.video import open_video

        path = self.paths[i % len(self.paths)]
        with open_video(path, self.backend, num_threads=self.threads) as reader:
            frames = reader.get_frames(segment_centres(reader.num_frames, self.n))
        if self.transforms is not None:
            return self.transforms(frames)
        return torch.from_numpy(frames)


def dataloader_throughput(
    paths: Sequence[str],
    n: int,
    workers: int,
    backend: str = "auto",
    transforms: Callable | None = None,
    clips: int = 96,
    batch_size: int = 8,
) -> float:
    """Clips/s of a DataLoader over ``paths`` (after its first batch, so without start-up)."""
    import torch

    ds = ClipDataset(paths, n, backend, 1, transforms, clips)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, num_workers=workers, shuffle=False, drop_last=True
    )
    it = iter(loader)
    next(it)
    t0 = time.perf_counter()
    count = 0
    for batch in it:
        count += len(batch)
    return count / (time.perf_counter() - t0)


def _load_callable(spec: str) -> Callable | None:
    if spec == "none":
        return None
    if spec == "train":
        from xclip.config import PreprocessConfig
        from xclip.data.transforms import TrainTransform

        return TrainTransform.from_preprocess(PreprocessConfig(image_size=224))
    module, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"--transforms must be 'train', 'none' or module:function, got {spec!r}")
    return getattr(importlib.import_module(module), attr)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips-dir", default=os.path.join(".cache", "bench_clips"))
    p.add_argument("--clips", nargs="+", default=DEFAULT_CLIPS, choices=list(CLIPS))
    p.add_argument("--frames", nargs="+", type=int, default=[8, 32])
    p.add_argument("--backends", nargs="+", default=None, help="default: pyav + installed ones")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--repeats-large", type=int, default=3, help="repeats for 720p clips")
    p.add_argument("--threads", type=int, default=1, help="decoder threads per worker")
    p.add_argument(
        "--transforms",
        default="train",
        help="'train' (the paper's train transforms, default), 'none', or module:callable",
    )
    p.add_argument(
        "--dataloader-workers",
        nargs="*",
        type=int,
        default=[1, 2],
        help="DataLoader clips/s with these worker counts (320x240 clips; default 1 2; none: no values)",
    )
    p.add_argument("--json", default=None, help="write raw results here")


def run_from_args(args: argparse.Namespace, transforms: Callable | None = None) -> int:
    from xclip.data.video import available_backends

    if args.transforms:
        transforms = _load_callable(args.transforms)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    have = available_backends()
    backends = args.backends or [b for b in ("pyav", "decord", "torchcodec") if b in have]
    missing = [b for b in backends if b not in have]
    if missing:
        print(f"backends not installed: {missing}", file=sys.stderr)
        backends = [b for b in backends if b in have]
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# cores usable: {affinity}, decoder threads: {args.threads}, backends: {backends}")
    paths = make_clips(args.clips_dir, args.clips)
    results = run(
        paths,
        ns=args.frames,
        backends=backends,
        repeats=args.repeats,
        repeats_large=args.repeats_large,
        threads=args.threads,
        transforms=transforms,
    )
    print(format_table(results, backends))
    loader_rows = []
    if args.dataloader_workers:
        small = [p for name, p in paths.items() if CLIPS[name][0] == (320, 240)]
        print("\n| DataLoader (320x240 clips, batch 8) | N | workers | stage | clips/s |")
        print("|---|---|---|---|---|")
        for n in args.frames:
            for stage, tf in [("decode", None)] + (
                [("decode+transforms", transforms)] if transforms is not None else []
            ):
                for w in args.dataloader_workers:
                    cps = dataloader_throughput(small, n, w, backends[0], tf)
                    loader_rows.append({"n": n, "workers": w, "stage": stage, "clips_s": cps})
                    print(f"| {backends[0]} | {n} | {w} | {stage} | {cps:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "per_clip": [
                        r.__dict__ | {"median": r.median, "cpu_median": r.cpu_median}
                        for r in results
                    ],
                    "dataloader": loader_rows,
                },
                f,
                indent=1,
            )
    bad = sum(r.wrong_frames for r in results)
    if bad:
        print(f"ERROR: {bad} wrong frames", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None, transforms: Callable | None = None) -> int:
    """Command-line entry point; ``transforms`` adds a decode+transforms stage."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run_from_args(p.parse_args(argv), transforms)


if __name__ == "__main__":
    sys.exit(main())
