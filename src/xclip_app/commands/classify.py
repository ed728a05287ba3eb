"""``xclip-video classify``: rank your own label texts for videos (files or folders).

Exit codes: 0 every video was classified; 1 some videos could not be read (each is reported on
stderr and in the output, then skipped); 2 a usage error, or no video could be classified.

The helpers at the top (model, labels and view options) are shared by ``embed``, ``search`` and
``serve``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xclip_app.exit_codes import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE

NAME = "classify"
HELP = "classify videos (files or folders) with your own labels: ranked probabilities or a timeline"

DEFAULT_MODEL = "xclip_b16_32f.zero_shot"
FORMATS = ("table", "json", "jsonl", "csv")


# --- shared option groups -----------------------------------------------------------------------


def add_model_arguments(p: argparse.ArgumentParser, default: str | None = DEFAULT_MODEL) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default=default,
        help="checkpoint path (xclip model folder, Hugging Face folder, original .pth), released "
        "weights ARCH.TAG (downloaded on first use), or an architecture name for random weights"
        + (" (default: %(default)s)" if default else ""),
    )
    g.add_argument(
        "--num-frames",
        type=int,
        help="frames per clip; default and recommended: the checkpoint's own (a different value "
        "is an error unless --interpolate)",
    )
    g.add_argument(
        "--image-size", type=int, help="input size; default: the checkpoint's (see --num-frames)"
    )
    g.add_argument(
        "--interpolate",
        action="store_true",
        help="allow --num-frames/--image-size to differ from the checkpoint by interpolating its "
        "position embeddings (accuracy changes until fine-tuned)",
    )
    g.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)"
    )
    g.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")


def add_view_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("views and batching")
    g.add_argument("--num-clips", type=int, default=1, help="temporal clips per video (default 1)")
    g.add_argument(
        "--num-crops", type=int, choices=(1, 3), default=1, help="spatial crops per clip (1 or 3)"
    )
    g.add_argument("--batch-size", type=int, default=8, help="views per model call (default 8)")
    g.add_argument(
        "--workers", type=int, default=1, help="decoding threads working ahead of the model"
    )


def add_label_arguments(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("labels")
    x = g.add_mutually_exclusive_group(required=required)
    x.add_argument("--labels", help="comma-separated label texts, e.g. 'cooking,dancing,surfing'")
    x.add_argument(
        "--labels-file",
        help="text file with one label per line (blank lines and lines starting with # ignored); "
        "use it for labels containing commas",
    )
    g.add_argument(
        "--template",
        default="{}",
        help="prompt with {} where the label goes, e.g. 'a video of a person {}' (default: {})",
    )


def read_labels(args: argparse.Namespace) -> list[str] | None:
    """Labels from ``--labels`` or ``--labels-file`` (validated), or None when neither is given."""
    from xclip.inference import check_labels

    if getattr(args, "labels_file", None):
        path = Path(args.labels_file)
        if not path.is_file():
            raise FileNotFoundError(f"labels file not found: {path}")
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        labels = [ln for ln in lines if ln and not ln.startswith("#")]
        if not labels:
            raise ValueError(f"labels file {path} has no labels; write one label per line")
    elif getattr(args, "labels", None) is not None:
        # empty items ("a,,b", a trailing comma) are dropped
        labels = [s.strip() for s in args.labels.split(",") if s.strip()]
        if not labels:
            raise ValueError("--labels is empty; give comma-separated texts, e.g. --labels 'a,b'")
    else:
        return None
    return check_labels(labels)


def classifier_from_args(args: argparse.Namespace, model, labels):
    """A :class:`xclip.inference.VideoClassifier` with the view/device/precision options of ``args``."""
    from xclip.inference import VideoClassifier

    return VideoClassifier(
        model,
        labels,
        template=args.template,
        num_clips=args.num_clips,
        num_crops=args.num_crops,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
    )


def load_model_from_args(args: argparse.Namespace, model: str | None = None):
    import torch

    from xclip.inference import load_inference_model

    if getattr(args, "threads", 0) and args.threads > 0:
        torch.set_num_threads(args.threads)
    for opt in ("num_frames", "image_size", "num_clips", "batch_size"):
        v = getattr(args, opt, None)
        if v is not None and v < 1:
            raise ValueError(f"--{opt.replace('_', '-')} must be >= 1, got {v}")
    return load_inference_model(
        model or args.model,
        num_frames=args.num_frames,
        image_size=args.image_size,
        interpolate=args.interpolate,
    )


def progress_bar(args: argparse.Namespace, total: int, desc: str):
    """A tqdm bar on stderr (hidden for one video, with --no-progress, or when not a terminal)."""
    from tqdm import tqdm

    disable = getattr(args, "no_progress", False) or total <= 1 or not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="video", disable=disable, file=sys.stderr)


def open_output(path: str | None):
    if path in (None, "-"):
        return sys.stdout
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", encoding="utf-8", newline="")


def exit_code(n_ok: int, n_failed: int) -> int:
    if n_failed and not n_ok:
        return EXIT_USAGE
    return EXIT_SOME_FAILED if n_failed else EXIT_OK


def report_failures(failures: Sequence[Any], n_total: int) -> None:
    for f in failures:
        print(f"xclip-video: skipped {f.source}: {f.error}", file=sys.stderr)
    if failures:
        print(
            f"xclip-video: {len(failures)} of {n_total} video(s) could not be read and were skipped",
            file=sys.stderr,
        )


# --- classify -----------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "videos", nargs="+", metavar="VIDEO_OR_FOLDER", help="video files and/or folders"
    )
    add_label_arguments(p)
    add_model_arguments(p)
    add_view_arguments(p)
    g = p.add_argument_group("output")
    g.add_argument(
        "--top-k", type=int, default=5, help="labels shown per video (default 5; 0 = all)"
    )
    g.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default table)"
    )
    g.add_argument("-o", "--output", help="write the results to this file (default: stdout)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-recursive", action="store_true", help="do not descend into sub-folders")
    g.add_argument("--timings", action="store_true", help="print per-stage timings to stderr")
    t = p.add_argument_group("long videos")
    t.add_argument("--window", type=float, help="seconds per window: a timeline of predictions")
    t.add_argument("--stride", type=float, help="seconds between window starts (default: --window)")


def _fmt_time(s: float) -> str:
    m, sec = divmod(s, 60)
    return f"{int(m):d}:{sec:05.2f}"


class _Writer:
    """Streams results in one of the formats; json is written as one document at the end."""

    def __init__(self, fmt: str, out, top_k: int | None, header: dict[str, Any]):
        self.fmt, self.out, self.k, self.header = fmt, out, top_k, header
        self.results: list[dict[str, Any]] = []
        self.failures: list[dict[str, str]] = []
        if fmt == "csv":
            self.csv = csv.writer(out)
            self.csv.writerow(["video", "start", "end", "rank", "label", "prob", "error"])

    def prediction(self, pred) -> None:
        d = pred.to_dict(self.k)
        if self.fmt == "table":
            self.out.write(f"{pred.source}\n" + _table(pred, self.k) + "\n")
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(d) + "\n")
        elif self.fmt == "csv":
            for r, (lb, p) in enumerate(pred.top(self.k), 1):
                self.csv.writerow([pred.source, "", "", r, lb, f"{p:.6f}", ""])
        else:
            self.results.append(d)
        self.out.flush()

    def timeline(self, source: str, windows: list) -> None:
        if self.fmt == "table":
            k = min(self.k or 3, 3)
            self.out.write(f"{source}\n")
            for w in windows:
                tops = "  ".join(f"{lb} {p:.3f}" for lb, p in w.top(k))
                self.out.write(f"  {_fmt_time(w.start)}-{_fmt_time(w.end)}  {tops}\n")
            self.out.write("\n")
        elif self.fmt == "jsonl":
            for w in windows:
                self.out.write(json.dumps(w.to_dict(self.k)) + "\n")
        elif self.fmt == "csv":
            for w in windows:
                for r, (lb, p) in enumerate(w.top(self.k), 1):
                    self.csv.writerow(
                        [source, f"{w.start:.3f}", f"{w.end:.3f}", r, lb, f"{p:.6f}", ""]
                    )
        else:
            self.results.append(
                {
                    "video": source,
                    "timeline": [
                        {k: v for k, v in w.to_dict(self.k).items() if k != "video"}
                        for w in windows
                    ],
                }
            )
        self.out.flush()

    def failure(self, f) -> None:
        if self.fmt == "jsonl":
            self.out.write(json.dumps(f.to_dict()) + "\n")
        elif self.fmt == "csv":
            self.csv.writerow([f.source, "", "", "", "", "", f.error])
        elif self.fmt == "json":
            self.failures.append(f.to_dict())
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            doc = {**self.header, "results": self.results, "failures": self.failures}
            self.out.write(json.dumps(doc, indent=2) + "\n")
        self.out.flush()


def _table(pred, k: int | None) -> str:
    width = max(len(lb) for lb in pred.labels[: k or None])
    lines = [f"  {'rank':>4}  {'prob':>6}  label"]
    for r, (lb, p) in enumerate(pred.top(k), 1):
        bar = "#" * int(round(p * 20))
        lines.append(f"  {r:>4}  {p:6.3f}  {lb:<{width}}  {bar}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from xclip.inference import VideoFailure, find_videos

    t_start = time.perf_counter()
    if args.top_k < 0:
        raise ValueError(f"--top-k must be >= 0, got {args.top_k}")
    if args.stride is not None and args.window is None:
        raise ValueError("--stride needs --window (the window length in seconds)")
    if args.window is not None and (
        args.window <= 0 or (args.stride is not None and args.stride <= 0)
    ):
        raise ValueError("--window and --stride must be > 0 seconds")
    labels = read_labels(args)
    videos = find_videos(args.videos, recursive=not args.no_recursive)
    t0 = time.perf_counter()
    model = load_model_from_args(args)
    clf = classifier_from_args(args, model, labels)
    t_model = time.perf_counter() - t0
    top_k = args.top_k or None
    header = {
        "model": args.model,
        "labels": clf.labels,
        "template": clf.template,
        "num_frames": clf.num_frames,
        "views": {"clips": args.num_clips, "crops": args.num_crops},
    }
    if args.window is not None:
        header["window"] = {"window": args.window, "stride": args.stride or args.window}
    out = open_output(args.output)
    writer = _Writer(args.format, out, top_k, header)
    failures: list[VideoFailure] = []
    n_ok = 0
    stage = {"decode": 0.0, "preprocess": 0.0, "model": 0.0}
    bar = progress_bar(args, len(videos), "classify")
    try:
        if args.window is not None:
            for v in videos:
                try:
                    windows = clf.timeline(v, args.window, args.stride)
                except (OSError, ValueError, RuntimeError) as e:
                    msg = str(e).splitlines()[0]
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
        writer.close()
    finally:
        bar.close()
        if out is not sys.stdout:
            out.close()
    if len(videos) == 1 and failures:
        # one video that cannot be read is a usage error: one line, exit 2
        raise ValueError(f"{failures[0].source}: {failures[0].error}")
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
