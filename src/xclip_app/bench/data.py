"""The data-loading benchmark: clips/s per worker for TSN sparse test sampling
(``xclip-video bench data``).

Reported per backend: median process CPU time per clip (all threads; the per-worker cost, robust
to other jobs on a shared machine), the clips/s it gives, and the median wall time.

Generates Kinetics-like clips once (:mod:`xclip_app.bench.clips`: 10 s, 30 fps, bar-coded frames;
320x240 h264 with a keyframe every 30 and every 250 frames, mpeg4, and a 1280x720 h264 clip), then
times, per clip and for N = 8 and 32 frames, the whole per-sample path of a DataLoader worker: open
the file, read the metadata, compute the segment-centre indices ``int((i + 0.5) * n / N)``, decode
them to uint8 RGB ``[N, H, W, 3]`` (and optionally run a transforms callable), close. Backends are
interleaved within each repeat and the median is reported; every returned frame is checked against
its bar code, and the frames of each backend are compared pixel by pixel with the default backend's.

Per-worker figures: run on one core with one decoding thread::

    taskset -c 0 xclip-video bench data

A decode + transforms stage is timed too: by default the paper's training transforms at 224 px
(``--transforms train``: resize, MultiScaleCrop, flip, per-frame colour jitter, grayscale,
normalise); ``--transforms none`` skips it and ``--transforms module:function`` names another
callable taking the uint8 ``[N, H, W, 3]`` numpy clip. DataLoader throughput is measured with
1 and 2 workers by default (``--dataloader-workers``).
"""

from __future__ import annotations

import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from xclip.config import PreprocessConfig
from xclip.data.synthetic import make_indexed_clip, read_frame_index
from xclip.data.transforms import TrainTransform
from xclip.data.video import available_backends, backend_problem, open_video
from xclip.errors import InputError
from xclip_app.bench.clips import CLIPS, DEFAULT_CLIPS

from .generated_files import generate_once

__all__ = [
    "ClipDataset",
    "DecodeTiming",
    "bench_data",
    "dataloader_throughput",
    "format_table",
    "load_transforms",
    "make_clips",
    "segment_centres",
    "time_decoding",
]

Transforms = Callable[[np.ndarray], Any]  # uint8 [N, H, W, 3] clip -> anything


def segment_centres(num_frames: int, n: int) -> list[int]:
    """TSN test sampling: the centre frame of each of ``n`` equal segments."""
    return [int((i + 0.5) * num_frames / n) for i in range(n)]


def make_clips(
    directory: str, names: Sequence[str], seconds: float = 10, fps: int = 30
) -> dict[str, str]:
    """Path of each named catalogue clip in ``directory``, encoding those not there yet."""
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for name in names:
        spec = CLIPS[name]
        path = os.path.join(directory, f"{name}.{spec.container}")
        if not os.path.exists(path):
            t0 = time.perf_counter()
            generate_once(
                path,
                lambda f, spec=spec: make_indexed_clip(
                    f, int(seconds * fps), size=spec.size, fps=fps, gop=spec.gop, codec=spec.codec
                ),
            )
            print(f"  generated {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        paths[name] = path
    return paths


@dataclass
class DecodeTiming:
    """Per-call timings of one backend on one clip, frame count and stage."""

    clip: str
    n: int
    stage: str  # "decode" or "decode+transforms"
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


def _read_clip(
    backend: str, path: str, n: int, threads: int, transforms: Transforms | None
) -> tuple[list[int], np.ndarray, Any]:
    """A DataLoader worker's per-sample path: (indices, uint8 frames [n, H, W, 3], transformed)."""
    with open_video(path, backend, num_threads=threads) as reader:
        idx = segment_centres(reader.num_frames, n)
        frames = reader.get_frames(idx)
    out = transforms(frames) if transforms is not None else None
    return idx, frames, out


def time_decoding(
    paths: dict[str, str],
    ns: Sequence[int] = (8, 32),
    backends: Sequence[str] = ("pyav", "decord"),
    repeats: int = 7,
    repeats_large: int = 3,
    threads: int = 1,
    transforms: Transforms | None = None,
) -> list[DecodeTiming]:
    """Time every backend on every clip (``name -> path``) and frame count ``ns``, interleaved
    within each repeat, after one checked warm-up read (``repeats_large`` for clips wider than
    640 px)."""
    stages = ["decode"] + (["decode+transforms"] if transforms is not None else [])
    results: list[DecodeTiming] = []
    for name, path in paths.items():
        spec = CLIPS.get(name)
        large = spec is not None and spec.size[0] > 640
        for n in ns:
            for stage in stages:
                tf = transforms if stage != "decode" else None
                ref = None
                per: dict[str, DecodeTiming] = {}
                # warm-up + correctness check
                for b in backends:
                    idx, frames, _ = _read_clip(b, path, n, threads, tf)
                    wrong = sum(read_frame_index(f) != i for f, i in zip(frames, idx, strict=True))
                    diff = None
                    if ref is None:
                        ref = frames
                    elif ref.shape == frames.shape:
                        diff = int(np.abs(ref.astype(np.int16) - frames.astype(np.int16)).max())
                    per[b] = DecodeTiming(name, n, stage, b, [], [], wrong, diff)
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


def format_table(results: Sequence[DecodeTiming], backends: Sequence[str]) -> str:
    """The markdown table of :func:`time_decoding`'s results, one row per clip, N and stage."""
    rows: dict[tuple[str, int, str], dict[str, DecodeTiming]] = {}
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


class ClipDataset(torch.utils.data.Dataset):
    """Minimal map-style dataset for the DataLoader stage: TSN centres of one clip per item."""

    def __init__(
        self,
        paths: Sequence[str],
        n: int,
        backend: str = "auto",
        threads: int = 1,
        transforms: Transforms | None = None,
        length: int = 64,
    ) -> None:
        self.paths, self.n, self.backend = list(paths), n, backend
        self.threads, self.transforms, self.length = threads, transforms, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Any:
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
    transforms: Transforms | None = None,
    clips: int = 96,
    batch_size: int = 8,
) -> float:
    """Clips/s of a DataLoader over ``paths`` (after its first batch, so without start-up)."""
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


def load_transforms(spec: str) -> Transforms | None:
    """``train`` (the paper's training transforms at 224 px), ``none``, or ``module:function``."""
    if spec == "none":
        return None
    if spec == "train":
        return TrainTransform.from_preprocess(PreprocessConfig(image_size=224))
    module, _, attr = spec.partition(":")
    if not attr:
        raise InputError(f"--transforms must be 'train', 'none' or module:function, got {spec!r}")
    return getattr(importlib.import_module(module), attr)


def bench_data(
    clips_dir: str,
    clips: Sequence[str] = DEFAULT_CLIPS,
    frames: Sequence[int] = (8, 32),
    backends: Sequence[str] | None = None,
    repeats: int = 7,
    repeats_large: int = 3,
    threads: int = 1,
    transforms: str = "train",
    dataloader_workers: Sequence[int] = (1, 2),
) -> dict[str, Any]:
    """Run the data benchmark, printing its tables on stdout as they are measured; returns every
    number as a JSON-able dict (``per_clip`` rows and ``dataloader`` rows).

    ``backends`` defaults to pyav and the optional backends that are installed; ``transforms`` is
    a :func:`load_transforms` spec (empty: no transforms stage); the DataLoader stage runs on the
    320x240 clips with the first backend, once per entry of ``dataloader_workers``.
    """
    tf = load_transforms(transforms) if transforms else None
    torch.set_num_threads(1)
    have = available_backends()
    backends = list(backends or [b for b in ("pyav", "decord", "torchcodec") if b in have])
    for b in [b for b in backends if b not in have]:
        print(f"backend {b} unavailable: {backend_problem(b)}", file=sys.stderr)
    backends = [b for b in backends if b in have]
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# cores usable: {affinity}, decoder threads: {threads}, backends: {backends}")
    paths = make_clips(clips_dir, clips)
    results = time_decoding(
        paths,
        ns=frames,
        backends=backends,
        repeats=repeats,
        repeats_large=repeats_large,
        threads=threads,
        transforms=tf,
    )
    print(format_table(results, backends))
    loader_rows = []
    if dataloader_workers:
        small = [p for name, p in paths.items() if CLIPS[name].size == (320, 240)]
        print("\n| DataLoader (320x240 clips, batch 8) | N | workers | stage | clips/s |")
        print("|---|---|---|---|---|")
        for n in frames:
            for stage, stage_tf in [("decode", None)] + (
                [("decode+transforms", tf)] if tf is not None else []
            ):
                for w in dataloader_workers:
                    cps = dataloader_throughput(small, n, w, backends[0], stage_tf)
                    loader_rows.append({"n": n, "workers": w, "stage": stage, "clips_s": cps})
                    print(f"| {backends[0]} | {n} | {w} | {stage} | {cps:.1f} |")
    return {
        "per_clip": [asdict(r) | {"median": r.median, "cpu_median": r.cpu_median} for r in results],
        "dataloader": loader_rows,
    }
