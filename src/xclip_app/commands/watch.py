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
from xclip_app.live_args import SOURCE_HELP, add_live_arguments, watcher_settings

NAME = "watch"
HELP = "recognise your labels on a live stream, camera, pipe or file: JSON rows per window and segments"

log = logging.getLogger("xclip_app.watch")


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread by the handler, like ``KeyboardInterrupt``)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    add_label_arguments(p, ensemble=True)
    add_model_arguments(p)
    add_live_arguments(p)
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
    settings = watcher_settings(args, args.source)
    kind = source_kind(args.source, args.input_format)
    labels = read_labels(args)
    read_templates(args)
    files = [args.source] if kind == "file" else []
    if args.output not in (None, "-"):
        check_outputs([args.output], overwrite=args.overwrite, **input_guards(args, files))
    model = load_model_from_args(args)
    clf = classifier_from_args(args, model, labels)
    watcher = Watcher(clf, args.source, **settings)
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
