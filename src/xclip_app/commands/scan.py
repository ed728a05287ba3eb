"""``xclip-video scan``: find the unreadable videos of an annotation list before a run does.

    xclip-video scan train.txt --root /data/k400 --labels labels.csv -o scan.json \\
        --clean-list train_clean.txt

Decodes every video of the list (``--decode sampled``: the frames evaluation reads, the default;
``all``: every frame; ``header``: open the header only, as training's preflight) in threads,
with a progress bar. Writes a JSON report (``-o``: per unreadable video its path, list line and
error; truncated files as warnings) and, with ``--clean-list``, the list without the unreadable
videos in the input's format. Both are written atomically; an existing output is refused unless
``--overwrite``, an output that is an input always. Exit code 0: every video readable; 1: some
are not (each named on stderr); 2: a mistake in the command (one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "scan"
HELP = "decode every video of a list: JSON report of the unreadable ones and a cleaned list"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("list", metavar="LIST", help="annotation list, video CSV or class folder")
    p.add_argument("--root", help="video folder or uncompressed .tar the list's paths are under")
    p.add_argument("--labels", help="labels CSV (id,name): also checks the labels' range")
    p.add_argument("-o", "--output", required=True, metavar="REPORT.json", help="JSON report")
    p.add_argument(
        "--clean-list", metavar="CLEAN", help="write the list without the unreadable videos"
    )
    p.add_argument(
        "--decode",
        choices=["header", "sampled", "all"],
        default="sampled",
        help="header: open the header only (fast); sampled: decode the frames evaluation reads "
        "(default); all: decode every frame (finds damage anywhere)",
    )
    p.add_argument(
        "--num-frames", type=int, default=8, help="frames per view for --decode sampled (8)"
    )
    p.add_argument("--views", default="1x1", help="CLIPSxCROPS for --decode sampled (1x1)")
    p.add_argument(
        "--backend", default="auto", help="video decoder: auto, pyav, torchcodec, decord"
    )
    p.add_argument("--workers", type=int, default=8, help="decoding threads (8)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm  # lazy: CLI start-up

    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip.data import VideoDataset  # lazy: CLI start-up
    from xclip.data.scan import cleaned_list, scan_dataset  # lazy: CLI start-up
    from xclip_app.exit_codes import EXIT_OK, EXIT_SOME_FAILED, UsageError  # lazy: CLI start-up
    from xclip_app.inference_args import parse_views  # lazy: CLI start-up
    from xclip_app.outputs import check_output  # lazy: CLI start-up
    from xclip_app.train.provenance import file_sha256  # lazy: CLI start-up

    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.num_frames < 1:
        raise UsageError(f"--num-frames must be >= 1, got {args.num_frames}")
    clips, crops = parse_views(args.views)
    inputs = [args.list, args.labels, args.root]
    report = check_output(args.output, flag="-o", overwrite=args.overwrite, inputs=inputs)
    clean = None
    if args.clean_list:
        clean = check_output(
            args.clean_list, flag="--clean-list", overwrite=args.overwrite, inputs=inputs
        )
        if clean.resolve() == report.resolve():
            raise UsageError("-o and --clean-list name the same file; give two different files")
    if not Path(args.list).exists():
        raise UsageError(f"no such list file or folder: {args.list}")

    ds = VideoDataset(
        args.list,
        args.root,
        args.labels,
        mode="test",
        num_frames=args.num_frames,
        num_clips=clips,
        num_crops=crops,
        backend=args.backend,
        check_files=False,  # a missing video is reported like an unreadable one
    )
    bar = None
    if not args.no_progress:
        bar = tqdm(total=len(ds), desc=f"scan ({args.decode})", unit="video", file=sys.stderr)
    try:
        res = scan_dataset(
            ds, args.decode, workers=args.workers, on_progress=bar.update if bar else None
        )
    finally:
        if bar is not None:
            bar.close()

    def item(p) -> dict:
        return {"path": p.path, "file": ds.storage.describe(p.path), "where": p.where}

    doc = {
        "list": args.list,
        "list_sha256": file_sha256(args.list),
        "root": args.root,
        "labels": args.labels,
        "decode": args.decode,
        "num_frames": args.num_frames if args.decode == "sampled" else None,
        "views": args.views if args.decode == "sampled" else None,
        "backend": args.backend,
        "videos": res.total,
        "readable": res.total - len(res.bad),
        "unreadable": len(res.bad),
        "seconds": round(res.seconds, 2),
        "bad": [{**item(p), "error": p.error} for p in res.bad],
        "warnings": [{**item(p), "warning": p.error} for p in res.warnings],
        "clean_list": str(clean) if clean else None,
    }
    if clean is not None:
        atomic_write_text(clean, cleaned_list(ds, res.bad_indices), overwrite=args.overwrite)
    atomic_write_text(report, json.dumps(doc, indent=2) + "\n", overwrite=args.overwrite)

    for p in res.bad:
        print(f"unreadable: {ds.storage.describe(p.path)} ({p.where}): {p.error}", file=sys.stderr)
    for p in res.warnings:
        print(f"warning: {ds.storage.describe(p.path)} ({p.where}): {p.error}", file=sys.stderr)
    kept = f"; clean list: {clean} ({res.total - len(res.bad)} videos)" if clean else ""
    print(
        f"scanned {res.total} videos (--decode {args.decode}) in {res.seconds:.1f} s: "
        f"{len(res.bad)} unreadable, {len(res.warnings)} warning(s); report: {report}{kept}"
    )
    return EXIT_SOME_FAILED if res.bad else EXIT_OK
