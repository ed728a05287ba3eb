"""``bench engines``: videos/s of the ``local`` engine against the ``ray`` engine with 1 and 2
model workers (the same model, videos and views; embed rows), and decode + preprocess
throughput of raw 720p clips against the same clips after ``xclip-video prepare``.

The clips are generated (:func:`xclip.data.synthetic.make_indexed_clip`, 1280x720, a keyframe
every 250 frames as cameras and downloads often have; one clip, copied) into ``clips_dir`` and prepared once;
both are reused by later runs. Ray is started before the timings (its start is reported
apart); each engine run is timed end to end from the first video to the last row, actor start
and model transfer included, since a user's job pays them too.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from .generated_files import generate_once

__all__ = ["bench_engines"]


def _clips(clips_dir: Path, n: int, frames: int) -> tuple[list[str], list[str]]:
    from xclip.data.synthetic import make_indexed_clip  # lazy: CLI start-up
    from xclip_app.transcode import PrepareWorker, TranscodeSettings  # lazy: CLI start-up

    raw_dir, prep_dir = clips_dir / "raw720p", clips_dir / "prepared"
    raw = []
    first = raw_dir / f"clip000-{frames}f.mp4"
    for i in range(n):
        p = raw_dir / f"clip{i:03d}-{frames}f.mp4"
        if i == 0:  # generating 720p frames costs ~0.3 s each: one clip, copied
            generate_once(
                p,
                lambda f: make_indexed_clip(
                    f, frames, size=(1280, 720), gop=250, preset="veryfast"
                ),
            )
        else:
            generate_once(p, lambda f: shutil.copyfile(first, f))
        raw.append(str(p))
    worker = PrepareWorker(str(raw_dir), str(prep_dir), TranscodeSettings())
    prepared = []
    for p in raw:
        target = worker.target(p)
        if not Path(target).exists():
            row = worker(p)
            if row["error"]:
                raise RuntimeError(f"{p}: {row['error']}")
        prepared.append(target)
    return raw, prepared


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bench_engines(
    clips_dir: str | os.PathLike,
    *,
    arch: str = "xclip_b32_8f",
    videos: int = 16,
    frames: int = 150,
    workers: tuple[int, ...] = (1, 2),
    cpus_per_worker: float = 1,
    ray_engine: bool = True,
) -> dict[str, Any]:
    """Every number of the benchmark (see the module docstring); prints the tables."""
    import torch  # lazy: CLI start-up

    import xclip  # lazy: CLI start-up
    from xclip_app.engines.local import run_local  # lazy: CLI start-up
    from xclip_app.engines.work import ClipPreparer, ModelWorker  # lazy: CLI start-up

    clips_dir = Path(clips_dir)
    t0 = time.perf_counter()
    raw, prepared = _clips(clips_dir, videos, frames)
    result: dict[str, Any] = {
        "arch": arch, "videos": videos, "frames_per_video": frames, "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "clips_seconds": time.perf_counter() - t0,
    }  # fmt: skip
    torch.manual_seed(0)
    model = xclip.create_model(arch).eval()
    prep = ClipPreparer.for_model(model)

    # decode + sample + preprocess (one thread), raw 720p vs prepared
    decode = {}
    for name, paths in (("raw 720p", raw), ("prepared (256, keyint 16)", prepared)):
        prep(paths[0])  # warm-up
        t = time.perf_counter()
        for p in paths:
            row = prep(p)
            if row["error"]:
                raise RuntimeError(f"{p}: {row['error']}")
        decode[name] = _rate(len(paths), time.perf_counter() - t)
    result["decode_videos_per_s"] = decode
    print(f"\ndecode + preprocess, {model.cfg.num_frames} frames per video, one thread "
          f"({videos} videos of {frames} frames)")  # fmt: skip
    print(f"  {'clips':<28} {'videos/s':>9}")
    for k, v in decode.items():
        print(f"  {k:<28} {v:9.2f}")
    speedup = decode["prepared (256, keyint 16)"] / decode["raw 720p"]
    print(f"  prepared / raw: {speedup:.2f}x")
    result["prepared_speedup"] = speedup

    kw: dict[str, Any] = {"task": "embed", "device": "cpu", "keep_tokens": False}
    engines: dict[str, float] = {}
    worker = ModelWorker(model, **kw)
    worker.rows([prep(prepared[0])])  # warm-up
    t = time.perf_counter()
    n = sum(len(rows) for rows in run_local(prepared, prep, worker.rows, workers=1))
    engines["local"] = _rate(n, time.perf_counter() - t)
    if ray_engine:
        from xclip_app.engines.ray_engine import init_ray, run_ray  # lazy: optional dependency

        t = time.perf_counter()
        init_ray(None, num_workers=max(workers), cpus_per_worker=cpus_per_worker)
        result["ray_init_seconds"] = time.perf_counter() - t
        for w in workers:
            t = time.perf_counter()
            rows = run_ray(prepared, prep, model, kw, num_workers=w,
                           cpus_per_worker=cpus_per_worker)  # fmt: skip
            n = sum(len(r) for r in rows)
            engines[f"ray, {w} worker{'s' if w > 1 else ''}"] = _rate(n, time.perf_counter() - t)
    result["engine_videos_per_s"] = engines
    print(f"\nembed {videos} prepared videos, {arch}, CPU ({os.cpu_count()} cores)")
    print(f"  {'engine':<28} {'videos/s':>9} {'vs local':>9}")
    for k, v in engines.items():
        print(f"  {k:<28} {v:9.2f} {v / engines['local']:8.2f}x")
    if "ray_init_seconds" in result:
        print(f"  (starting the local Ray, not included above: {result['ray_init_seconds']:.1f}s)")
    return result
