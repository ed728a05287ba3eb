"""``xclip-video bench``: ``bench model`` times xclip against ``transformers.XCLIPModel`` holding
the same weights (:mod:`xclip_app.bench.model`); ``bench data`` times video decoding per
DataLoader worker (:mod:`xclip_app.bench.data`)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from xclip_app.bench.clips import CLIPS, DEFAULT_CLIPS
from xclip_app.exit_codes import EXIT_OK, EXIT_SOME_FAILED, UsageError
from xclip_app.inference_args import add_overwrite_argument
from xclip_app.option_types import positive_float

NAME = "bench"
HELP = "benchmarks: `bench model` times xclip against transformers.XCLIPModel (same weights)"


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``bench model`` (also used by ``benchmarks/bench_model.py``)."""
    p.add_argument("--arch", default="xclip_b32_8f", help="architecture (default xclip_b32_8f)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument(
        "--repeats", type=int, default=None, help="timed repeats per configuration (cpu 7, cuda 30)"
    )
    p.add_argument(
        "--batch-sizes",
        default=None,
        help="comma-separated videos per forward (default: cpu '1', cuda '1,16')",
    )
    p.add_argument("--labels", type=int, default=10, help="class texts per forward (default 10)")
    p.add_argument(
        "--dtypes",
        default=None,
        help="comma-separated from fp32,bf16,fp16 (default: cpu 'fp32,bf16', cuda all three)",
    )
    p.add_argument(
        "--cast",
        choices=("autocast", "weights"),
        default="autocast",
        help="low precision via torch.autocast with fp32 weights (default) or cast weights+inputs",
    )
    p.add_argument("--no-hf", action="store_true", help="time xclip only (no transformers)")
    p.add_argument(
        "--no-onnx",
        action="store_true",
        help="no ONNX Runtime rows (default: exported and timed when onnxruntime is installed)",
    )
    p.add_argument("--no-peak", action="store_true", help="skip the matmul peak measurement")
    p.add_argument(
        "--peak-seconds", type=positive_float(), default=1.0, help="time spent per matmul peak"
    )
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per configuration")
    p.add_argument("--json", dest="json_path", default=None, help="write every number to this file")
    add_overwrite_argument(p)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``bench data`` (also used by ``benchmarks/bench_data.py``)."""
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
    add_overwrite_argument(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(
        dest="what", required=True, metavar="{model,data,engines,search,watch,segments}"
    )
    add_model_arguments(
        sub.add_parser("model", help="model forward latency/throughput against transformers")
    )
    add_data_arguments(
        sub.add_parser("data", help="decoding clips/s per worker against decord, DataLoader")
    )
    add_engines_arguments(  # xclip_app.bench.engines
        sub.add_parser("engines", help="videos/s: local vs ray engine; prepared vs raw 720p")
    )
    add_search_arguments(  # xclip_app.bench.search
        sub.add_parser(
            "search", help="the moments index against exact search: build, memory, latency, recall"
        )
    )
    add_watch_arguments(  # xclip_app.bench.watch
        sub.add_parser(
            "watch", help="live recognition: latency p50/p95, real-time factor, skipped windows"
        )
    )
    add_segments_arguments(  # xclip_app.bench.segments
        sub.add_parser(
            "segments", help="watch's segments on a stream of the demo's motions: found, false"
        )
    )


def add_engines_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``bench engines``."""
    p.add_argument("--clips-dir", default=os.path.join(".cache", "bench_engines"))
    p.add_argument("--arch", default="xclip_b32_8f", help="model (random weights)")
    p.add_argument("--videos", type=int, default=16, help="videos per run (default 16)")
    p.add_argument("--frames", type=int, default=150, help="frames per generated clip")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="ray model workers")
    p.add_argument("--cpus-per-worker", type=positive_float(), default=1)
    p.add_argument("--no-ray", action="store_true", help="local engine and decoding only")
    p.add_argument("--json", default=None, help="write every number here")
    add_overwrite_argument(p)


def add_search_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``bench search``."""
    p.add_argument("--vectors", type=int, default=100_000, help="indexed vectors (default 100000)")
    p.add_argument("--dim", type=int, default=512, help="vector width (default 512: B/32, B/16)")
    p.add_argument("--queries", type=int, default=200, help="timed queries per k (default 200)")
    p.add_argument(
        "--index-memory-gb",
        type=positive_float(),
        default=1.0,
        help="memory budget of the index, as embed --index-memory-gb (default 1)",
    )
    p.add_argument("--threads", type=int, default=None, help="FAISS threads (default: all)")
    p.add_argument("--lancedb", action="store_true", help="also LanceDB's IVF_SQ (needs lancedb)")
    p.add_argument("--json", default=None, help="write every number here")
    add_overwrite_argument(p)


def add_watch_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``bench watch``."""
    p.add_argument("--clips-dir", default=os.path.join(".cache", "bench_watch"))
    p.add_argument(
        "--models",
        default="demo,xclip_b32_8f",
        help="comma-separated: demo (the demo's architecture) and/or architecture names "
        "(random weights; default demo,xclip_b32_8f)",
    )
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated (default fp32,bf16)")
    p.add_argument("--strides", default="0.5,1,2", help="comma-separated seconds (default 0.5,1,2)")
    p.add_argument("--window", type=positive_float(), default=2.0, help="seconds (default 2)")
    p.add_argument(
        "--seconds", type=positive_float(), default=20.0, help="stream length per run (default 20)"
    )
    p.add_argument("--size", default="640x360", help="stream frame size WxH (default 640x360)")
    p.add_argument("--fps", type=int, default=25, help="stream frame rate (default 25)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--json", default=None, help="write every number here")
    add_overwrite_argument(p)


def add_segments_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``bench segments``."""
    p.add_argument(
        "--model",
        required=True,
        help="a trained demo model (after `xclip-video demo`: runs/demo/runs/main/best)",
    )
    p.add_argument("--work-dir", default=os.path.join(".cache", "bench_segments"))
    p.add_argument("--segments", type=int, default=30, help="true segments (default 30)")
    p.add_argument(
        "--heldout", action="store_true", help="the held-out classes (zero-shot) instead of seen"
    )
    p.add_argument("--window", type=positive_float(), default=2.0, help="seconds (default 2)")
    p.add_argument("--stride", type=positive_float(), default=0.5, help="seconds (default 0.5)")
    p.add_argument(
        "--thresholds", default="0.3,0.5,0.7", help="comma-separated (default 0.3,0.5,0.7)"
    )
    p.add_argument(
        "--min-durations", default="0.5,1", help="comma-separated seconds (default 0.5,1)"
    )
    p.add_argument("--seed", type=int, default=2024, help="the stream's seed (default 2024)")
    p.add_argument("--json", default=None, help="write every number here")
    add_overwrite_argument(p)


def run_search(args: argparse.Namespace) -> int:
    """``bench search``: the table on stdout, progress on stderr, every number to ``--json``."""
    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip_app.bench.search import bench_search, format_search_result  # lazy: CLI start-up
    from xclip_app.exit_codes import UsageError  # lazy: CLI start-up

    if args.vectors < 100 or args.dim < 1 or args.queries < 1:
        raise UsageError("--vectors must be >= 100, --dim and --queries >= 1")
    result = bench_search(
        args.vectors, dim=args.dim, queries=args.queries, lancedb=args.lancedb,
        memory_budget=int(args.index_memory_gb * 2**30), threads=args.threads,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )  # fmt: skip
    print(format_search_result(result))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    from xclip_app.outputs import check_output  # lazy: CLI start-up

    out = getattr(args, "json_path", None) or getattr(args, "json", None)
    if out is not None:  # before minutes of measuring
        clips = getattr(args, "clips_dir", None)
        check_output(out, overwrite=args.overwrite, flag="--json", inputs=[clips] if clips else [])
    if args.what == "data":
        return run_data(args)
    if args.what == "engines":
        return run_engines(args)
    if args.what == "search":
        return run_search(args)
    if args.what == "watch":
        return run_watch(args)
    if args.what == "segments":
        return run_segments(args)
    return run_model(args)


def _comma_list(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


def run_model(args: argparse.Namespace) -> int:
    """``bench model``: the table on stdout, progress on stderr, every number to ``--json``."""
    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip_app.bench.model import bench_model, format_model_result  # lazy: CLI start-up

    batch_sizes = _comma_list(args.batch_sizes)
    result = bench_model(
        arch=args.arch,
        device=args.device,
        threads=args.threads,
        repeats=args.repeats,
        batch_sizes=[int(b) for b in batch_sizes] if batch_sizes else None,
        num_labels=args.labels,
        dtypes=_comma_list(args.dtypes),
        cast=args.cast,
        hf=not args.no_hf,
        onnx=False if args.no_onnx else None,
        peak=not args.no_peak,
        peak_seconds=args.peak_seconds,
        warmup=args.warmup,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(format_model_result(result))
    if args.json_path:
        atomic_write_text(args.json_path, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json_path}")
    return EXIT_OK


def run_engines(args: argparse.Namespace) -> int:
    """``bench engines``: tables on stdout, every number to ``--json``."""
    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip_app.bench.engines import bench_engines  # lazy: CLI start-up

    result = bench_engines(
        args.clips_dir, arch=args.arch, videos=args.videos, frames=args.frames,
        workers=tuple(args.workers), cpus_per_worker=args.cpus_per_worker,
        ray_engine=not args.no_ray,
    )  # fmt: skip
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    return EXIT_OK


def run_watch(args: argparse.Namespace) -> int:
    """``bench watch``: a row per run as it finishes, the table at the end, ``--json``."""
    import torch  # lazy: CLI start-up

    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip_app.bench.watch import bench_watch, format_watch_result  # lazy: CLI start-up

    try:
        strides = [float(x) for x in _comma_list(args.strides) or []]
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--strides/--size: numbers expected, got {args.strides!r}, "
                         f"{args.size!r}") from None  # fmt: skip
    if not strides or min(strides) <= 0 or width < 16 or height < 16 or args.fps < 1:
        raise UsageError("--strides must be > 0, --size at least 16x16, --fps >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = bench_watch(
        args.clips_dir, models=_comma_list(args.models) or [],
        precisions=_comma_list(args.precisions) or [], strides=strides, window=args.window,
        seconds=args.seconds, size=(width, height), fps=args.fps,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )  # fmt: skip
    print(format_watch_result(result))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    return EXIT_OK


def run_segments(args: argparse.Namespace) -> int:
    """``bench segments``: a line per threshold, every number to ``--json``."""
    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip_app.bench.segments import score_watch  # lazy: CLI start-up

    try:
        thresholds = [float(x) for x in _comma_list(args.thresholds) or []]
        durations = [float(x) for x in _comma_list(args.min_durations) or []]
    except ValueError:
        raise UsageError("--thresholds/--min-durations: comma-separated numbers") from None
    if not (thresholds and all(0 < t <= 1 for t in thresholds)) or args.segments < 1:
        raise UsageError("--thresholds must be in (0, 1] and --segments >= 1")
    if not (durations and all(0 <= d < 1e6 for d in durations)):
        raise UsageError("--min-durations must be seconds >= 0")
    result = score_watch(
        args.model, args.work_dir, heldout=args.heldout, segments=args.segments,
        window=args.window, stride=args.stride, thresholds=thresholds,
        min_durations=durations, seed=args.seed,
    )  # fmt: skip
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    return EXIT_OK


def run_data(args: argparse.Namespace) -> int:
    """``bench data``: tables on stdout, raw results to ``--json``; exit code 1 when a decoded
    frame is not the one asked for."""
    from xclip.atomic import atomic_write_text  # lazy: CLI start-up
    from xclip_app.bench.data import bench_data  # lazy: CLI start-up

    result = bench_data(
        args.clips_dir,
        clips=args.clips,
        frames=args.frames,
        backends=args.backends,
        repeats=args.repeats,
        repeats_large=args.repeats_large,
        threads=args.threads,
        transforms=args.transforms,
        dataloader_workers=args.dataloader_workers,
    )
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    bad = sum(r["wrong_frames"] for r in result["per_clip"])
    if bad:
        print(f"ERROR: {bad} wrong frames", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK
