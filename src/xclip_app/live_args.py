"""Options of a live source and of its windows and segments, shared by ``xclip-video watch`` and
``xclip-video serve --live``: one definition, so each option means the same in both, and the
:class:`xclip.live.Watcher` settings built from them (checked before a model is loaded).

Imported when ``xclip-video`` starts: the library is imported inside the functions.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from xclip_app.exit_codes import UsageError
from xclip_app.option_types import finite_float, positive_float

__all__ = ["SOURCE_HELP", "add_live_arguments", "live_options_given", "watcher_settings"]

SOURCE_HELP = (
    "rtsp://, rtmp://, srt://, udp://, tcp://, http(s):// (HLS too), a device (/dev/video0), "
    "- for stdin, or a video file"
)
# dest -> default of every option add_live_arguments defines
_DEFAULTS: dict[str, Any] = {
    "realtime": False,
    "timeout": 10.0,
    "input_format": None,
    "input_option": [],
    "duration": None,
    "window": 2.0,
    "stride": 1.0,
    "threshold": 0.5,
    "release": None,
    "min_duration": 0.0,
}


def add_live_arguments(p: argparse.ArgumentParser, where: str = "") -> None:
    """The source options (``--realtime``, ``--timeout``, ``--input-format``, ``-O``,
    ``--duration``) and the windows and segments (``--window``, ``--stride``, ``--threshold``,
    ``--release``, ``--min-duration``); ``where`` is added to the groups' titles."""
    s = p.add_argument_group("source" + where)
    s.add_argument(
        "--realtime",
        action="store_true",
        help="pace a file at its own frame rate, as a camera would send it (default: as fast as "
        "the model takes it, every window classified)",
    )
    s.add_argument(
        "--timeout",
        type=positive_float(),
        default=_DEFAULTS["timeout"],
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
    w = p.add_argument_group("windows and segments" + where)
    w.add_argument(
        "--window",
        type=positive_float(),
        default=_DEFAULTS["window"],
        help="seconds of stream per prediction; the model samples its own number of frames "
        "from it (default 2)",
    )
    w.add_argument(
        "--stride",
        type=positive_float(),
        default=_DEFAULTS["stride"],
        help="seconds between window starts (default 1); a model slower than this skips windows",
    )
    w.add_argument(
        "--threshold",
        type=finite_float(0.0, 1.0, low_open=True),
        default=_DEFAULTS["threshold"],
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
        default=_DEFAULTS["min_duration"],
        help="segments shorter than this many seconds are not reported (default 0)",
    )


def live_options_given(args: argparse.Namespace) -> list[str]:
    """The options of :func:`add_live_arguments` set to something other than their default."""
    return [
        "--" + dest.replace("_", "-")
        for dest, default in _DEFAULTS.items()
        if getattr(args, dest, default) != default
    ]


def _input_options(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--input-option must be KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def watcher_settings(args: argparse.Namespace, source: str) -> dict[str, Any]:
    """The keyword arguments of :class:`xclip.live.Watcher` (all but the classifier and the
    source) from the options of :func:`add_live_arguments`. ``UsageError`` (one line) for what
    can be told without opening the source: a release above the threshold, a malformed ``-O``,
    ``--realtime`` on a live source, a file that is not there."""
    from xclip.live.stream import source_kind  # lazy: CLI start-up

    release = 0.8 * args.threshold if args.release is None else args.release
    if release > args.threshold:
        raise UsageError(
            f"--release {release:g} is above --threshold {args.threshold:g}; it is the lower "
            "level a segment may fall to before it ends"
        )
    options = _input_options(args.input_option)
    kind = source_kind(source, args.input_format)
    if args.realtime and kind != "file":
        raise UsageError("--realtime paces a file; a live source comes at its own pace")
    if kind == "file" and not os.path.isfile(source):
        raise UsageError(
            f"{source}: not a file, URL (rtsp://, udp://, http://, ...), device "
            "(/dev/video0) or - (stdin)"
        )
    return dict(
        window=args.window, stride=args.stride, realtime=args.realtime, timeout=args.timeout,
        threshold=args.threshold, release=release, min_duration=args.min_duration,
        duration=args.duration, options=options, input_format=args.input_format,
    )  # fmt: skip
