"""A collection job of ``classify``/``embed`` on an engine, into a Parquet output: the options
(:func:`add_engine_arguments`, shared by the commands), the run (:func:`run_collection`).

What the job does: expand the inputs (:mod:`xclip_app.collection_inputs`), check the output
(:func:`xclip_app.outputs.check_outputs`), load the model once, skip the videos the output
already holds (:class:`xclip_app.parquet_results.ResultTable`), run the rest on the engine, one
row per video (errors included), publish the output, report failures, exit 0/1/2.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from xclip_app.exit_codes import UsageError
from xclip_app.option_types import finite_float, positive_float

__all__ = ["ENGINES", "add_engine_arguments", "run_collection", "wants_collection_job"]

ENGINES = ("local", "ray")


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """``--engine``, ``--address``, ``--num-workers``, ``--gpus-per-worker``,
    ``--cpus-per-worker``, ``--part-rows`` (the same in classify, embed and prepare)."""
    g = p.add_argument_group("engine (collections; see docs/scale.md)")
    g.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: this process (default); ray: decoding as Ray tasks and the model in a pool "
        "of Ray actors, on this machine or a cluster (--address); needs pip install 'xclip[ray]'",
    )
    g.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join (auto, HOST:6379, ray://HOST:10001); default: start a local Ray",
    )
    g.add_argument(
        "--num-workers", type=int, default=1, help="ray: model workers (actors) (default 1)"
    )
    g.add_argument(
        "--gpus-per-worker",
        type=finite_float(0.0),
        default=0,
        help="ray: GPUs per model worker (0 = CPU; 0.5 = two workers share a GPU) (default 0)",
    )
    g.add_argument(
        "--cpus-per-worker",
        type=positive_float(),
        default=1,
        help="ray: CPUs (torch threads) per model worker without GPU (default 1)",
    )
    g.add_argument(
        "--part-rows",
        type=int,
        default=256,
        help="Parquet output: rows per part file; a crash redoes at most this many (default 256)",
    )


def wants_collection_job(args: argparse.Namespace) -> bool:
    """Whether the command runs as a collection job: ``--engine ray`` or a Parquet ``-o``."""
    from xclip_app.parquet_results import is_parquet_output  # lazy: CLI start-up

    engine = getattr(args, "engine", "local")
    if engine == "ray" and (
        args.output in (None, "-") or args.output.endswith((".safetensors", ".npy", ".json"))
        or args.output.endswith((".jsonl", ".csv", ".txt"))
    ):  # fmt: skip
        raise UsageError(
            f"--engine ray writes a Parquet output: give -o OUT.parquet (or -o FOLDER/), "
            f"not {args.output or 'stdout'}"
        )
    return engine == "ray" or is_parquet_output(args.output)


def run_collection(args: argparse.Namespace, task: str, labels: list[str] | None) -> int:
    """Run ``task`` (classify, embed, or windows: ``embed --window``, a moments library) over
    ``args.videos`` into the Parquet ``args.output``."""
    from xclip.fingerprint import old_fingerprint_problem  # lazy: CLI start-up
    from xclip.inference.loading import model_info  # lazy: CLI start-up
    from xclip_app.collection_inputs import expand_inputs  # lazy: CLI start-up
    from xclip_app.engines.work import ClipPreparer, ModelWorker  # lazy: CLI start-up
    from xclip_app.inference_args import (  # lazy: CLI start-up
        compile_choice,
        input_guards,
        load_model_from_args,
        read_templates,
    )
    from xclip_app.inference_output import (  # lazy: CLI start-up
        exit_code,
        progress_bar,
        report_failures,
    )
    from xclip_app.outputs import check_outputs  # lazy: CLI start-up
    from xclip_app.parquet_results import ResultTable, guarded_file  # lazy: CLI start-up

    if task == "classify" and getattr(args, "window", None) is not None:
        raise UsageError("--window timelines are not written to Parquet; use --format jsonl -o")
    if args.engine == "ray":
        from xclip_app.engines.ray_engine import import_ray  # lazy: optional dependency

        import_ray()  # the install hint before any work
    t0 = time.perf_counter()
    videos = expand_inputs(args.videos, recursive=not args.no_recursive)
    # an existing output is continued (same settings) or replaced (--overwrite), checked below
    out = args.output.rstrip("/") or args.output
    folder = guarded_file(args.output) != out  # a folder of parts (else one .parquet file)
    check_outputs([out], overwrite=True, folder=folder, kind="parquet" if folder else None,
                  **input_guards(args, videos))  # fmt: skip
    model = load_model_from_args(args)
    template = read_templates(args)
    keep_tokens = task == "embed" and not getattr(args, "no_tokens", False)
    worker_kwargs: dict[str, Any] = dict(
        labels=labels, template=template, num_clips=args.num_clips, num_crops=args.num_crops,
        device=args.device, precision=args.precision, batch_size=args.batch_size,
        keep_tokens=keep_tokens, compile=compile_choice(args.compile),
    )  # fmt: skip
    preparer: Any = ClipPreparer.for_model(model, num_clips=args.num_clips,
                                           num_crops=args.num_crops)  # fmt: skip
    library = None
    if task == "windows":  # xclip_app.moments_library: window rows and their index
        from xclip_app.moments_library import MomentsLibrary  # lazy: CLI start-up

        library = MomentsLibrary.from_args(args, model)
        preparer = library.preparer()
        worker_kwargs.update(library.worker_kwargs())
    info = model_info(model, args.model)
    # an export by an older xclip has its source's old fingerprint, int8 or not: its rows could
    # pass for another export's on resume
    problem = old_fingerprint_problem(
        info["fingerprint"],
        f"the exported folder {args.model}",
        "export it again (`xclip-video export SOURCE -o FOLDER --overwrite`) to run Parquet jobs",
    )
    if problem is not None:
        raise UsageError(problem)
    job = {
        "model": info,
        "fingerprint": info["fingerprint"],
        "config": info["config"],
        "labels": labels if task == "classify" else None,
        "template": template if task == "classify" else None,
        "views": {
            "num_clips": args.num_clips,
            "num_crops": args.num_crops,
            "view_mode": "uniform",
        },  # fmt: skip
        "precision": args.precision,
        "extra": {"tokens": keep_tokens} if task == "embed" else {},
    }
    if library is not None:
        job["extra"] = library.job_extra()
    table = ResultTable(args.output, task, job, overwrite=args.overwrite, part_rows=args.part_rows)
    done = table.start()  # how many videos the output holds: resume skips them by location
    todo = table.pending(videos)
    if done:
        print(
            f"xclip-video: {args.output} already holds {len(videos) - len(todo)} of "
            f"{len(videos)} video(s); {len(todo)} to do",
            file=sys.stderr,
        )
    if args.engine == "ray":
        from xclip_app.engines.ray_engine import run_ray  # lazy: optional dependency

        batches = run_ray(
            todo, preparer, model, {"task": task, **worker_kwargs}, address=args.address,
            num_workers=args.num_workers, gpus_per_worker=args.gpus_per_worker,
            cpus_per_worker=args.cpus_per_worker,
        )  # fmt: skip
    else:
        from xclip_app.engines.local import run_local  # lazy: CLI start-up

        worker: Any = (ModelWorker if library is None else library.worker)(
            model, task, **worker_kwargs
        )
        batches = run_local(todo, preparer, worker.rows, workers=args.workers)
    from xclip.inference import VideoFailure  # lazy: CLI start-up

    failures: list[VideoFailure] = []
    n_ok = 0
    bar = progress_bar(args, len(todo), f"{task} ({args.engine})")
    try:
        for rows in batches:
            table.add(rows)
            videos_done = 0
            for r in rows:
                if r["error"] is not None:
                    failures.append(VideoFailure(r["path"], r["error"]))
                    videos_done += 1
                elif task != "windows" or r["window"] == r["num_windows"] - 1:
                    n_ok += 1  # a video (its last window)
                    videos_done += 1
            bar.update(videos_done)
    finally:
        bar.close()
    if library is not None:
        path = table.finish(library.add_rows, library.write_index)
    else:
        path = table.finish()
    dt = time.perf_counter() - t0
    if library is not None:
        print(library.summary(path, n_ok, len(failures), table, dt), file=sys.stderr)
    else:
        print(
            f"wrote {path}: {n_ok + len(failures)} new row(s) ({len(failures)} failed) in "
            f"{dt:.1f}s, {table.n_rows} in all",
            file=sys.stderr,
        )
    # the exit code and report cover the whole output: a rerun says what the first run said
    earlier = [VideoFailure(p, e) for p, e in sorted(table.earlier_failures.items())]
    report_failures(earlier + failures, len(videos))
    n_failed = len(failures) + len(earlier)
    return exit_code(n_ok + done - len(earlier), n_failed)
