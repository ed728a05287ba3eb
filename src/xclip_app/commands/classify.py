"""``xclip-video classify``: rank your own label texts for videos (files or folders).

Exit codes: 0 every video was classified; 1 some videos could not be read (each is reported on
stderr and in the output, then skipped); 2 a usage error, or no video could be classified (then
nothing is written). ``-o`` is written atomically and never replaces an input (see
:mod:`xclip_app.inference_output`); an existing ``-o`` needs ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
import time

from xclip_app.engines.job import add_engine_arguments, run_collection, wants_collection_job
from xclip_app.exit_codes import UsageError
from xclip_app.inference_args import (
    add_label_arguments,
    add_model_arguments,
    add_overwrite_argument,
    add_view_arguments,
    classifier_from_args,
    input_guards,
    load_model_from_args,
    read_labels,
    read_templates,
)
from xclip_app.inference_output import (
    FORMATS,
    PredictionWriter,
    exit_code,
    open_output,
    progress_bar,
    report_failures,
)
from xclip_app.option_types import positive_float
from xclip_app.outputs import check_outputs

NAME = "classify"
HELP = "classify videos (files or folders) with your own labels: ranked probabilities or a timeline"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "videos", nargs="+", metavar="VIDEO_OR_FOLDER", help="video files and/or folders"
    )
    add_label_arguments(p, ensemble=True)
    add_model_arguments(p)
    add_view_arguments(p)
    g = p.add_argument_group("output")
    g.add_argument(
        "--top-k", type=int, default=5, help="labels shown per video (default 5; 0 = all)"
    )
    g.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default table)"
    )
    g.add_argument(
        "-o",
        "--output",
        help="write the results to this file (default: stdout); OUT.parquet (or a folder with "
        "--engine ray): one row per video, resumable (docs/scale.md)",
    )
    add_overwrite_argument(g)
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-recursive", action="store_true", help="do not descend into sub-folders")
    g.add_argument("--timings", action="store_true", help="print per-stage timings to stderr")
    t = p.add_argument_group("long videos")
    t.add_argument(
        "--window",
        type=positive_float(),
        help="seconds per window (at least one frame): a timeline of predictions",
    )
    t.add_argument(
        "--stride",
        type=positive_float(),
        help="seconds between window starts (at least one frame; default: --window)",
    )
    t.add_argument(
        "--max-windows",
        type=int,
        default=None,
        help="the most windows one video may have; a video with more is refused before any "
        "window runs (default 10000, xclip.inference.timeline.MAX_WINDOWS; raise it to "
        "confirm a longer run)",
    )
    add_engine_arguments(p)  # collections: --engine ray, Parquet -o (xclip_app.engines.job)


def run(args: argparse.Namespace) -> int:
    from xclip.data.video import find_videos  # lazy: CLI start-up
    from xclip.inference import VideoFailure  # lazy: CLI start-up
    from xclip.inference.errors import BAD_VIDEO_ERRORS, one_line_error  # lazy: CLI start-up
    from xclip.inference.labels import prompts  # lazy: CLI start-up
    from xclip.inference.loading import model_info  # lazy: CLI start-up
    from xclip.inference.timeline import MAX_WINDOWS, TimelineError  # lazy: CLI start-up

    t_start = time.perf_counter()
    if args.top_k < 0:
        raise UsageError(f"--top-k must be >= 0, got {args.top_k}")
    if args.stride is not None and args.window is None:
        raise UsageError("--stride needs --window (the window length in seconds)")
    if args.max_windows is not None and args.max_windows < 1:
        raise UsageError(f"--max-windows must be >= 1, got {args.max_windows}")
    labels = read_labels(args)
    # a wrong template or templates file, or a text the encoder would cut, fails before the
    # model loads
    templates = read_templates(args)
    prompts(labels, [templates] if isinstance(templates, str) else templates)
    if wants_collection_job(args):  # --engine ray or -o OUT.parquet (xclip_app.engines.job)
        return run_collection(args, "classify", labels)
    videos = find_videos(args.videos, recursive=not args.no_recursive)
    if args.output not in (None, "-"):
        check_outputs([args.output], overwrite=args.overwrite, **input_guards(args, videos))
    t0 = time.perf_counter()
    model = load_model_from_args(args)
    clf = classifier_from_args(args, model, labels)
    t_model = time.perf_counter() - t0
    top_k = args.top_k or None
    # what is needed to get the same numbers again (json header; sampling is deterministic)
    header = {
        "model": args.model,
        "model_info": model_info(clf.model, args.model),
        "labels": clf.labels,
        "template": clf.template,
        "num_frames": clf.num_frames,
        "views": {"clips": args.num_clips, "crops": args.num_crops, "mode": clf.view_mode},
        "precision": clf.precision,
    }
    if args.window is not None:
        header["window"] = {"window": args.window, "stride": args.stride or args.window}
    failures: list[VideoFailure] = []
    n_ok = 0
    stage = {"decode": 0.0, "preprocess": 0.0, "model": 0.0}
    bar = progress_bar(args, len(videos), "classify")
    try:
        with open_output(args.output, overwrite=args.overwrite) as out:
            writer = PredictionWriter(args.format, out, top_k, header)
            if args.window is not None:
                limit = MAX_WINDOWS if args.max_windows is None else args.max_windows
                for v in videos:
                    try:
                        windows = clf.timeline(v, args.window, args.stride, max_windows=limit)
                    except TimelineError as e:  # in the options' own words: one line, exit 2
                        raise UsageError(e.explain("--window", "--stride", "--max-windows")) from e
                    except BAD_VIDEO_ERRORS as e:  # only the decoder's and the file system's
                        msg = one_line_error(e)
                        failures.append(VideoFailure(v, msg.removeprefix(f"{v}: ")))
                        writer.failure(failures[-1])
                    else:
                        n_ok += 1
                        writer.timeline(v, windows)
                        for w in windows:
                            for key in stage:
                                stage[key] += w.timings.get(key, 0.0)
                    bar.update(1)
            else:
                for r in clf.classify_iter(videos, workers=args.workers):
                    if isinstance(r, VideoFailure):
                        failures.append(r)
                        writer.failure(r)
                    else:
                        n_ok += 1
                        writer.prediction(r)
                        for key in stage:
                            stage[key] += r.timings.get(key, 0.0)
                    bar.update(1)
            if len(videos) == 1 and failures:
                # one video that cannot be read is a usage error: one line, exit 2, nothing
                # written (raised inside the block: the output is not published)
                raise UsageError(f"{failures[0].source}: {failures[0].error}")
            if failures and not n_ok:
                # nothing usable came out: keep any earlier output, name every video
                report_failures(failures, len(videos))
                raise UsageError(
                    f"none of the {len(videos)} videos could be read; nothing was written"
                )
            writer.close()
    finally:
        bar.close()
    report_failures(failures, len(videos))
    if args.timings:
        total = time.perf_counter() - t_start
        print(
            f"timings: model load {t_model:.2f}s | decode {stage['decode']:.3f}s | preprocess "
            f"{stage['preprocess']:.3f}s | model {stage['model']:.3f}s | total {total:.2f}s "
            f"({n_ok} video(s))",
            file=sys.stderr,
        )
    return exit_code(n_ok, len(failures))
