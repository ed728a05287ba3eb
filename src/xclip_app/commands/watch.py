"""``xclip-video watch``: open-vocabulary recognition on a live source, as JSON lines.

SOURCE is a network stream (``rtsp://``, ``rtmp://``, ``srt://``, ``udp://``, ``tcp://``,
``http(s)://``, HLS), a capture device (``/dev/video0``; ``--input-format avfoundation`` or
``dshow`` elsewhere), ``-`` for a pipe on stdin, or a file (read as fast as the model takes it, or
at its own frame rate with ``--realtime``). Every ``--stride`` seconds a ``--window`` of the stream
is classified against your labels; one JSON row per window and one per segment (a label above
``--threshold``, with hysteresis and ``--min-duration``) go to stdout or ``-o FILE``, a file that
grows row by row (a reader can follow it). Editing ``--labels-file`` changes the labels while
the stream runs. See docs/live.md.

Exit codes: 0 the source ended (a file, a pipe) or ``--duration`` was reached; 1 a live source
was lost (no frame for ``--timeout`` seconds, reconnects included) after it had sent frames;
2 a usage error, or a source that never sent a frame (one line); 130 Ctrl-C and 143 SIGTERM,
after the open segments were flushed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from xclip_app.exit_codes import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_TERMINATED,
    UsageError,
)
from xclip_app.inference_args import (
    add_label_arguments,
    add_model_arguments,
    add_overwrite_argument,
    classifier_from_args,
    input_guards,
    load_model_from_args,
    read_labels,
    read_templates,
)
from xclip_app.option_types import finite_float, positive_float

NAME = "watch"
HELP = "recognise your labels on a live stream, camera, pipe or file: JSON rows per window and segments"

log = logging.getLogger("xclip_app.watch")


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread by the handler, like ``KeyboardInterrupt``)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="rtsp://, rtmp://, srt://, udp://, tcp://, http(s):// (HLS too), a device "
        "(/dev/video0), - for stdin, or a video file",
    )
    add_label_arguments(p, ensemble=True)
    add_model_arguments(p)
    s = p.add_argument_group("source")
    s.add_argument(
        "--realtime",
        action="store_true",
        help="pace a file at its own frame rate, as a camera would send it (default: as fast as "
        "the model takes it, every window classified)",
    )
    s.add_argument(
        "--timeout",
        type=positive_float(),
        default=10.0,
        help="seconds without a frame (connecting, reading, reconnecting) before a live source "
        "is given up (default 10)",
    )
    s.add_argument(
        "--input-format",
        help="FFmpeg's demuxer when it cannot be guessed: v4l2 (Linux cameras), avfoundation "
        "(macOS), dshow (Windows), mpegts (a pipe), ...",
    )
    s.add_argument(
        "-O",
        "--input-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an FFmpeg input option, e.g. -O rtsp_transport=tcp (repeatable)",
    )
    s.add_argument(
        "--duration",
        type=positive_float(),
        help="stop after this many seconds of the stream (default: at its end)",
    )
    w = p.add_argument_group("windows and segments")
    w.add_argument(
        "--window",
        type=positive_float(),
        default=2.0,
        help="seconds of stream per prediction; the model samples its own number of frames "
        "from it (default 2)",
    )
    w.add_argument(
        "--stride",
        type=positive_float(),
        default=1.0,
        help="seconds between window starts (default 1); a model slower than this skips windows",
    )
    w.add_argument(
        "--threshold",
        type=finite_float(0.0, 1.0, low_open=True),
        default=0.5,
        help="a segment starts when a label's probability reaches this (default 0.5)",
    )
    w.add_argument(
        "--release",
        type=finite_float(0.0, 1.0, low_open=True),
        default=None,
        help="... and goes on while it stays at or above this (hysteresis; default: "
        "0.8 x --threshold)",
    )
    w.add_argument(
        "--min-duration",
        type=finite_float(0.0),
        default=0.0,
        help="segments shorter than this many seconds are not reported (default 0)",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "--top-k", type=int, default=5, help="labels per window row (default 5; 0 = all)"
    )
    o.add_argument(
        "--rows",
        choices=("all", "segments"),
        default="all",
        help="all: window and segment rows (default); segments: segment rows only",
    )
    o.add_argument(
        "-o",
        "--output",
        help="append the rows to this file as they come (default: stdout); it is started "
        "afresh, and an existing one needs --overwrite",
    )
    add_overwrite_argument(o)
    p.set_defaults(num_clips=1, num_crops=1, batch_size=None)  # one view per window


def _input_options(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--input-option must be KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


class _Rows:
    """Where the rows go: stdout, or an :class:`xclip.append_log.AppendLog`."""

    def __init__(self, path: str | None) -> None:
        from xclip.append_log import AppendLog  # lazy: CLI start-up

        self.log = None if path in (None, "-") else AppendLog(path, fresh=True)
        self._lock = threading.Lock()

    def write(self, row: dict) -> None:
        line = json.dumps(row, ensure_ascii=False)
        with self._lock:  # rows come from the model's and the reader's threads
            if self.log is None:
                print(line, flush=True)
            else:
                self.log.write_line(line)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


class _LabelsFileFollower:
    """Polls ``--labels-file`` twice a second; a changed file sets the watcher's labels. A file
    that cannot be used (empty, unreadable, a duplicate label) is reported on stderr and the
    labels in use are kept."""

    def __init__(self, args: argparse.Namespace, watcher) -> None:  # noqa: ANN001
        self.args, self.watcher = args, watcher
        self.path = Path(args.labels_file)
        self._seen = self._stamp()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xclip-labels", daemon=True)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from xclip.errors import InputError  # lazy: CLI start-up

        while not self._stop.wait(0.5):
            stamp = self._stamp()
            if stamp is None or stamp == self._seen:
                continue
            self._seen = stamp
            try:
                self.watcher.set_labels(read_labels(self.args))
            except (UsageError, InputError, OSError) as e:
                log.warning("%s: kept the labels in use: %s", self.path, e)


def run(args: argparse.Namespace) -> int:
    from xclip.live import Segment, Watcher, WindowResult  # lazy: CLI start-up
    from xclip.live.stream import source_kind  # lazy: CLI start-up
    from xclip_app.outputs import check_outputs  # lazy: CLI start-up

    if args.top_k < 0:
        raise UsageError(f"--top-k must be >= 0, got {args.top_k}")
    release = 0.8 * args.threshold if args.release is None else args.release
    if release > args.threshold:
        raise UsageError(
            f"--release {release:g} is above --threshold {args.threshold:g}; it is the lower "
            "level a segment may fall to before it ends"
        )
    options = _input_options(args.input_option)
    kind = source_kind(args.source, args.input_format)
    if args.realtime and kind != "file":
        raise UsageError("--realtime paces a file; a live source comes at its own pace")
    labels = read_labels(args)
    read_templates(args)
    files = [args.source] if kind == "file" else []
    if args.output not in (None, "-"):
        check_outputs([args.output], overwrite=args.overwrite, **input_guards(args, files))
    if kind == "file" and not os.path.isfile(args.source):
        raise UsageError(
            f"{args.source}: not a file, URL (rtsp://, udp://, http://, ...), device "
            "(/dev/video0) or - (stdin)"
        )
    model = load_model_from_args(args)
    clf = classifier_from_args(args, model, labels)
    watcher = Watcher(
        clf, args.source, window=args.window, stride=args.stride, realtime=args.realtime,
        timeout=args.timeout, threshold=args.threshold, release=release,
        min_duration=args.min_duration, duration=args.duration, options=options,
        input_format=args.input_format,
    )  # fmt: skip
    rows = _Rows(args.output)
    top_k = args.top_k or None

    def on_event(event: object) -> None:
        if isinstance(event, WindowResult):
            if args.rows == "all":
                rows.write(event.as_row(top_k))
        elif isinstance(event, Segment):
            rows.write(event.as_row())

    watcher.subscribe(on_event)
    follower = _LabelsFileFollower(args, watcher) if args.labels_file else None
    previous = signal.getsignal(signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()

    def on_sigterm(signum, frame) -> None:  # noqa: ANN001
        raise Terminated

    if in_main:
        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if follower is not None:
            follower.start()
        stats = watcher.run()  # Ctrl-C / SIGTERM: the open segments are flushed on the way out
    except Terminated:
        print(f"xclip-video {NAME}: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        if follower is not None:
            follower.stop()
        rows.close()
    s = stats.as_dict()
    p50, p95 = s["latency_p50"], s["latency_p95"]
    lat = f"latency p50 {p50 * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms" if p50 is not None else ""
    print(
        f"xclip-video {NAME}: {stats.windows} windows ({stats.skipped} skipped) over "
        f"{stats.stream_seconds:.1f} s of stream; {lat}; {stats.reconnects} reconnects, "
        f"{stats.corrupt_packets} corrupt packets skipped; ended: {stats.ended}",
        file=sys.stderr,
    )
    if stats.ended == "source lost":
        print(f"xclip-video {NAME}: error: {args.source}: {stats.error}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK
