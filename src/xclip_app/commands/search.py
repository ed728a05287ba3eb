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
    write_search_results,
)
from xclip_app.outputs import check_outputs

NAME = "search"
HELP = "rank the videos of an index (from `embed`) for text queries (text-to-video retrieval)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("queries", nargs="+", metavar="QUERY", help="text queries, e.g. 'a dog surfing'")
    p.add_argument(
        "--index",
        required=True,
        help="index written by `xclip-video embed`: .safetensors, .npy, or a Parquet output",
    )
    add_model_arguments(p, default=None)
    p.add_argument("--top-k", type=int, default=10, help="videos per query (default 10; 0 = all)")
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
