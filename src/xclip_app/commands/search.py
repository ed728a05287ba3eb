"""``xclip-video search "text query" --index FILE``: rank indexed videos for a text (retrieval).

The model defaults to the one recorded in the index by ``embed``; the scores must come from the
same weights, which is checked (a weights fingerprint is stored in the index). ``-o`` is written
atomically, needs ``--overwrite`` when it exists, and is refused when it is the index (or a file
of it) or the model.
"""

from __future__ import annotations

import argparse
import os

from xclip_app.exit_codes import EXIT_OK, UsageError
from xclip_app.inference_args import (
    add_model_arguments,
    add_overwrite_argument,
    input_guards,
    load_model_from_args,
    model_from_index,
)
from xclip_app.inference_output import (
    FORMATS,
    open_output,
    write_moment_results,
    write_search_results,
)
from xclip_app.option_types import finite_float
from xclip_app.outputs import check_outputs

NAME = "search"
HELP = "rank the videos of an index (from `embed`) for text queries (text-to-video retrieval)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("queries", nargs="*", metavar="QUERY", help="text queries, e.g. 'a dog surfing'")
    p.add_argument(
        "--index",
        required=True,
        help="index written by `xclip-video embed`: .safetensors, .npy, a Parquet output, or a "
        "moments library (embed --window -o LIB): then the results are moments",
    )
    add_model_arguments(p, default=None)
    p.add_argument(
        "--top-k",
        type=int,
        default=10,
        help="videos per query (default 10; 0 = all); moments: 1 to 10000",
    )
    m = p.add_argument_group("moments library (docs/search.md)")
    m.add_argument("--like", metavar="CLIP", help="query by example: moments that look like CLIP")
    m.add_argument("--path", dest="path_glob", metavar="GLOB",
                   help="only videos whose path (as embedded) matches GLOB, e.g. '*/cats/*'")  # fmt: skip
    m.add_argument("--min-duration", type=finite_float(0.0), default=None,
                   help="only moments of at least this many seconds")  # fmt: skip
    m.add_argument("--max-duration", type=finite_float(0.0), default=None,
                   help="only moments of at most this many seconds")  # fmt: skip
    p.add_argument(
        "--method",
        choices=("auto", "prompted", "cosine"),
        default="auto",
        help="prompted: the model's own video-conditioned score (default when the index has "
        "tokens); cosine: plain cosine of video and text embeddings",
    )
    p.add_argument("--template", default="{}", help="prompt with {} for the query (default: {})")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("-o", "--output", help="write the results to this file (default: stdout)")
    add_overwrite_argument(p)


def is_parquet_index(path: str) -> bool:
    """A Parquet ``embed`` output: ``*.parquet``, or a folder of parts."""
    return path.endswith(".parquet") or os.path.isdir(path)


def run(args: argparse.Namespace) -> int:
    from xclip.inference.moments import is_moment_library  # lazy: CLI start-up

    if is_moment_library(args.index):
        return run_moments(args)
    given = [o for o, v in (("--like", args.like), ("--path", args.path_glob),
                            ("--min-duration", args.min_duration),
                            ("--max-duration", args.max_duration)) if v is not None]  # fmt: skip
    if given:
        raise UsageError(
            f"{given[0]} searches a moments library (embed --window -o LIB); {args.index} is a "
            f"whole-video index"
        )
    if not args.queries:
        raise UsageError("give at least one text query")
    return run_videos(args)


def run_moments(args: argparse.Namespace) -> int:
    """Moments of a library for text queries, or for ``--like CLIP`` (one search)."""
    from xclip.inference import load_moments, search_moments  # lazy: CLI start-up
    from xclip.inference.device import resolve_device  # lazy: CLI start-up
    from xclip.inference.loading import model_fingerprint  # lazy: CLI start-up
    from xclip.inference.moments import MAX_TOP_K, MOMENTS_FILES  # lazy: CLI start-up

    if not 1 <= args.top_k <= MAX_TOP_K:
        raise UsageError(f"--top-k must be from 1 to {MAX_TOP_K} for moments, got {args.top_k}")
    if args.method == "prompted":
        raise UsageError("a moments library is searched by cosine; drop --method prompted")
    if bool(args.queries) == bool(args.like):
        raise UsageError("give text queries or --like CLIP (one of the two)")
    index = load_moments(args.index)
    recorded = index.model.get("source")
    model_src = args.model or (recorded and model_from_index(recorded, args.index))
    if not model_src or model_src == "XCLIP":
        raise UsageError(f"{args.index} does not record its model; pass --model")
    if args.output not in (None, "-"):
        files = [os.path.join(args.index, n) for n in MOMENTS_FILES]
        extra = [args.like] if args.like else []
        guards = input_guards(args, model=model_src, extra_inputs=[args.index, *files, *extra])
        check_outputs([args.output], overwrite=args.overwrite, **guards)
    model = load_model_from_args(args, model_src).eval()
    if args.device:
        model.to(resolve_device(args.device))
    queries = args.queries or [None]
    results = []
    for q in queries:
        found = search_moments(
            q, index, model, like=args.like, top_k=args.top_k, path_glob=args.path_glob,
            min_duration=args.min_duration, max_duration=args.max_duration, template=args.template,
        )  # fmt: skip
        results.append((q if q is not None else f"like {args.like}", found))
    header = {
        "index": args.index, "model": model_src, "model_fingerprint": model_fingerprint(model),
        "method": "cosine", "template": args.template, "top_k": args.top_k,
        "window": index.settings.get("window"), "stride": index.settings.get("stride"),
        "filters": {"path": args.path_glob, "min_duration": args.min_duration,
                    "max_duration": args.max_duration},
    }  # fmt: skip
    with open_output(args.output, overwrite=args.overwrite) as out:
        write_moment_results(out, args.format, results, header)
    return EXIT_OK


def run_videos(args: argparse.Namespace) -> int:
    """Videos of a whole-video index ranked for each text query."""
    from xclip.inference import index_files, load_index, model_fingerprint  # lazy: CLI start-up
    from xclip.inference import search as search_index  # lazy: CLI start-up
    from xclip.inference.device import resolve_device  # lazy: CLI start-up

    if args.top_k < 0:
        raise UsageError(f"--top-k must be >= 0, got {args.top_k}")
    if is_parquet_index(args.index):  # an `embed -o OUT.parquet` output (xclip_app.parquet_results)
        from xclip_app.parquet_results import load_parquet_index  # lazy: CLI start-up

        index = load_parquet_index(args.index)
    else:
        index = load_index(args.index)
    recorded = index.model.get("source")
    model_src = args.model or (recorded and model_from_index(recorded, args.index))
    if not model_src or model_src == "XCLIP":
        raise UsageError(f"{args.index} does not record its model; pass --model")
    if args.output not in (None, "-"):
        files = [args.index] if is_parquet_index(args.index) else index_files(args.index)
        guards = input_guards(args, model=model_src, extra_inputs=files)
        check_outputs([args.output], overwrite=args.overwrite, **guards)
    model = load_model_from_args(args, model_src).eval()
    if args.device:
        model.to(resolve_device(args.device))
    results = []
    for q in args.queries:
        hits = search_index(
            q, index, model, top_k=args.top_k or None, template=args.template, method=args.method
        )
        results.append((q, hits))
    header = {
        "index": args.index,
        "model": model_src,
        "model_fingerprint": model_fingerprint(model),
        "method": args.method
        if args.method != "auto"
        else ("prompted" if index.tokens is not None else "cosine"),
        "template": args.template,
        "top_k": args.top_k,
    }
    with open_output(args.output, overwrite=args.overwrite) as out:
        write_search_results(out, args.format, results, header)
    return EXIT_OK
