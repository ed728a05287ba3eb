"""``xclip-video embed``: video embeddings (and class-text embeddings) for retrieval.

Writes an index that ``xclip-video search`` reads: ``FILE.safetensors`` (one file) or ``FILE.npy``
(+ ``FILE.json`` with the paths and the model, ``FILE.tokens.npy``, ``FILE.text.npy``); with
``--window`` a moments library folder (one row per window and a vector index,
:mod:`xclip_app.moments_library`).
Exit codes as ``classify``: 0 all embedded, 1 some videos skipped, 2 usage error / none embedded.
All files of the index are written to temporary names and renamed into place only when the
whole index is written; an existing index needs ``--overwrite``; an index that is also an input
is refused.
"""

from __future__ import annotations

import argparse
import sys

from xclip_app.engines.job import add_engine_arguments, run_collection, wants_collection_job
from xclip_app.exit_codes import UsageError
from xclip_app.inference_args import (
    add_label_arguments,
    add_model_arguments,
    add_overwrite_argument,
    add_view_arguments,
    compile_choice,
    index_model_name,
    input_guards,
    load_model_from_args,
    read_labels,
)
from xclip_app.inference_output import (
    exit_code,
    output_error,
    progress_bar,
    report_failures,
)
from xclip_app.option_types import positive_float
from xclip_app.outputs import check_outputs

NAME = "embed"
HELP = "write video embeddings (and label-text embeddings) to an index for `search`"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "videos", nargs="+", metavar="VIDEO_OR_FOLDER", help="video files and/or folders"
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="index file: .safetensors (one file) or .npy (+ .json, .tokens.npy, .text.npy); or "
        "OUT.parquet (a folder with --engine ray): one row per video, resumable (docs/scale.md)",
    )
    add_overwrite_argument(p)
    add_model_arguments(p)
    add_view_arguments(p)
    add_label_arguments(p, required=False)
    p.add_argument(
        "--no-tokens",
        action="store_true",
        help="compact index without the prompt generator's visual tokens (search then uses "
        "--method cosine only)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-recursive", action="store_true", help="do not descend into sub-folders")
    w = p.add_argument_group("moments library (docs/search.md)")
    w.add_argument(
        "--window",
        type=positive_float(),
        help="seconds per window (at least one frame): -o LIB becomes a moments library, one row "
        "per window and a vector index, for `search --index LIB`; a rerun adds new videos",
    )
    w.add_argument(
        "--stride",
        type=positive_float(),
        help="seconds between window starts (at least one frame; default: --window)",
    )
    w.add_argument(
        "--index-memory-gb",
        type=positive_float(),
        default=1.0,
        help="memory budget of the library's index: exact search while the vectors fit and are "
        "few, else a compressed approximate index (default 1)",
    )
    add_engine_arguments(p)  # collections: --engine ray, Parquet -o (xclip_app.engines.job)


def run(args: argparse.Namespace) -> int:
    from xclip.data.video import find_videos  # lazy: CLI start-up
    from xclip.inference import embed_videos, index_files  # lazy: CLI start-up

    if args.window is not None:  # a moments library (xclip_app.moments_library)
        return run_collection(args, "windows", None)
    if args.stride is not None:
        raise UsageError("--stride needs --window (the window rows of a moments library)")
    if wants_collection_job(args):  # --engine ray or -o OUT.parquet (xclip_app.engines.job)
        return run_collection(args, "embed", read_labels(args))
    if not args.output.endswith((".safetensors", ".npy")):
        raise UsageError(f"--output must end in .safetensors or .npy, got {args.output!r}")
    labels = read_labels(args)
    videos = find_videos(args.videos, recursive=not args.no_recursive)
    check_outputs(index_files(args.output), overwrite=args.overwrite, **input_guards(args, videos))
    model = load_model_from_args(args)
    bar = progress_bar(args, len(videos), "embed")
    try:
        index = embed_videos(
            model,
            videos,
            labels=labels,
            template=args.template,
            keep_tokens=not args.no_tokens,
            num_clips=args.num_clips,
            num_crops=args.num_crops,
            device=args.device,
            precision=args.precision,
            batch_size=args.batch_size,
            compile=compile_choice(args.compile),
            workers=args.workers,
            progress=lambda *_: bar.update(1),
            model_name=index_model_name(args.model, args.output),
        )
    finally:
        bar.close()
    if len(videos) == 1 and index.failures:
        f = index.failures[0]
        raise UsageError(f"{f.source}: {f.error}")
    if len(index):
        try:
            path = index.save(args.output, overwrite=args.overwrite)
        except OSError as e:  # save only writes: a full disk, the index created meanwhile
            raise output_error(args.output, e) from e
        print(
            f"wrote {path}: {len(index)} video(s), embeddings {tuple(index.embeds.shape)}"
            + (f", tokens {tuple(index.tokens.shape)}" if index.tokens is not None else "")
            + (f", {len(index.labels)} label embeddings" if index.labels else ""),
            file=sys.stderr,
        )
    report_failures(index.failures, len(videos))
    if not len(index):
        raise UsageError(f"none of the {len(videos)} videos could be read; no index was written")
    return exit_code(len(index), len(index.failures))
