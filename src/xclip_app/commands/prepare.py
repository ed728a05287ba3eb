"""``xclip-video prepare SRC DST``: transcode a video tree for training, on the local or the ray
engine (:mod:`xclip_app.transcode`): short side 256, a keyframe every 16 frames, H.264 mp4, the
relative layout of SRC kept under DST (``a/b.avi`` -> ``DST/a/b.mp4``). Each output is checked
to decode with the source's frame count.

``DST/_prepare.parquet`` records one row per source video (its output, or why it failed); a
rerun continues where a run stopped (``--overwrite`` redoes everything). ``--annotations``
list files (``relative/path label`` lines, the original's format) are rewritten for DST into
``DST/<name>``; lines of videos that failed are left out (and counted).

DST may hold other files: they are never touched. Every file the run would write (each
transcode, ``_prepare.parquet``, each rewritten list) is checked before any work: one that is in
the way and was not written by xclip (:mod:`xclip.ownership`) stops the run with one line naming
it, ``--overwrite`` or not; an annotation list kept inside DST is an input and never replaced.

Exit codes: 0 all prepared, 1 some videos failed (each named), 2 a usage error / none prepared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path, PurePosixPath

from xclip_app.engines.job import add_engine_arguments
from xclip_app.exit_codes import UsageError
from xclip_app.inference_args import add_overwrite_argument

NAME = "prepare"
HELP = "transcode a video tree for training (short side 256, dense keyframes), layout kept"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC", help="folder of videos (searched recursively)")
    p.add_argument("dst", metavar="DST", help="output folder (created; never inside SRC)")
    p.add_argument(
        "--annotations",
        nargs="+",
        default=[],
        metavar="LIST",
        help="annotation list files (`path label` lines, paths relative to SRC) to rewrite for DST",
    )
    p.add_argument("--short-side", type=int, default=256, help="short side in pixels (default 256)")
    p.add_argument(
        "--keyframe-interval", type=int, default=16, help="frames between keyframes (default 16)"
    )
    p.add_argument("--crf", type=int, default=23, help="x264 quality, lower is better (default 23)")
    p.add_argument("--preset", default="veryfast", help="x264 preset (default veryfast)")
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="local: parallel transcodes"
    )
    add_overwrite_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_engine_arguments(p)


def _rewrite_annotations(
    files: list[str], src: Path, dst: Path, ok: dict[str, str], overwrite: bool
) -> None:
    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip.data.annotations.text import read_annotation_text  # lazy: CLI start-up

    for name in files:
        p = Path(name)
        try:
            lines = read_annotation_text(p).splitlines()
        except FileNotFoundError:
            raise UsageError(f"annotation list not found: {p}") from None
        out, dropped = [], 0
        for line in lines:
            parts = line.split(maxsplit=1)
            if not parts:
                out.append(line)
                continue
            video = Path(parts[0])
            full = str(video if video.is_absolute() else src / video)
            if full not in ok:
                dropped += 1
                continue
            new = Path(ok[full])
            shown = str(new) if video.is_absolute() else str(PurePosixPath(new.relative_to(dst)))
            out.append(" ".join([shown, *parts[1:]]))
        target = dst / p.name
        atomic_write_text(target, "\n".join(out) + "\n", overwrite=True)
        print(
            f"wrote {target}: {len(out)} line(s)"
            + (f", {dropped} left out (video failed or not under SRC)" if dropped else ""),
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    from xclip.data.video import find_videos  # lazy: CLI start-up
    from xclip.inference import VideoFailure  # lazy: CLI start-up
    from xclip_app.inference_output import (  # lazy: CLI start-up
        exit_code,
        progress_bar,
        report_failures,
    )
    from xclip_app.outputs import (  # lazy: CLI start-up
        check_not_foreign,
        check_work_folder,
        is_within,
    )
    from xclip_app.parquet_results import ResultTable, read_rows  # lazy: CLI start-up
    from xclip_app.transcode import PrepareWorker, TranscodeSettings  # lazy: CLI start-up

    # new, empty, or an earlier prepare output (as typed: a dangling link is refused, not
    # followed); locked: one writer at a time
    check_work_folder(args.dst, "prepared", flag="DST", marker="_prepare.parquet")
    src, dst = Path(args.src).resolve(), Path(args.dst).resolve()
    if not src.is_dir():
        raise UsageError(f"SRC must be a folder of videos, got {args.src}")
    if is_within(dst, src) or is_within(src, dst):
        raise UsageError(f"DST {args.dst} and SRC {args.src} overlap; choose a DST outside SRC")
    for opt in ("short_side", "keyframe_interval"):
        if getattr(args, opt) < 2:
            raise UsageError(f"--{opt.replace('_', '-')} must be >= 2")
    settings = TranscodeSettings(args.short_side, args.keyframe_interval, args.crf, args.preset)
    try:
        videos = find_videos([src])
    except ValueError as e:  # no videos
        raise UsageError(str(e)) from None
    worker = PrepareWorker(str(src), str(dst), settings)
    lists = [Path(a) for a in args.annotations]
    for a in lists:
        if not a.is_file():
            raise UsageError(f"annotation list not found: {a}")
        if (dst / a.name).exists() and os.path.samefile(a, dst / a.name):
            raise UsageError(
                f"the annotation list {a} is DST/{a.name}, where its rewritten copy would go; "
                f"keep the list outside DST (--overwrite never replaces an input)"
            )
    check_not_foreign([dst / "_prepare.parquet", *(dst / a.name for a in lists)], flag="DST")
    job = {"extra": {"src": str(src), **settings.to_dict()}}
    table = ResultTable(dst / "_prepare.parquet", "prepare", job, overwrite=args.overwrite,
                        part_rows=args.part_rows)  # fmt: skip
    done = table.start()
    todo = table.pending(videos)
    check_not_foreign([Path(worker.target(v)) for v in todo], flag="DST")  # before any work
    if done:
        print(
            f"xclip-video: {len(videos) - len(todo)} of {len(videos)} already prepared",
            file=sys.stderr,
        )
    t0 = time.perf_counter()
    if args.engine == "ray" and todo:
        from xclip_app.engines.ray_engine import init_ray  # lazy: optional dependency

        ray = init_ray(args.address)
        ds = ray.data.from_items([{"path": v} for v in todo]).map(worker, num_cpus=1)
        batches = (b.to_pylist() for b in ds.iter_batches(batch_size=None, batch_format="pyarrow"))
    else:
        from xclip_app.engines.local import run_local  # lazy: CLI start-up

        batches = run_local(todo, worker, lambda rows: rows, workers=max(1, args.workers))
    failures: list[VideoFailure] = []
    bar = progress_bar(args, len(todo), f"prepare ({args.engine})")
    try:
        for rows in batches:
            table.add(rows)
            failures += [VideoFailure(r["path"], r["error"]) for r in rows if r["error"]]
            bar.update(len(rows))
    finally:
        bar.close()
    table.finish()
    rows = read_rows(dst / "_prepare.parquet")
    ok = {r["path"]: r["output"] for r in rows if r["error"] is None}
    n_failed = len(rows) - len(ok)
    print(
        f"prepared {len(todo) - len(failures)} video(s) into {dst} in "
        f"{time.perf_counter() - t0:.1f}s ({len(ok)} of {len(videos)} in all)",
        file=sys.stderr,
    )
    if args.annotations:
        _rewrite_annotations(args.annotations, src, dst, ok, args.overwrite)
    report_failures(
        [VideoFailure(r["path"], r["error"]) for r in rows if r["error"] is not None], len(videos)
    )
    return exit_code(len(ok), n_failed)
