"""``xclip-video serve``: a local web page and JSON API to classify videos with your own labels.

Open the printed address in a browser, upload (or pick) a video, type labels, and see either the
frames the model saw and a bar chart of probabilities (Classify) or each label's probability over
time (Timeline). With ``--index LIB`` (a moments library) the page also finds moments of the
library by a text or an example clip and plays them (:mod:`xclip_app.serve.search_view`). The
JSON API (``POST /api/classify``, ``POST /api/timeline``, ``GET /api/search``) is described in
``docs/serve.md``, ``xclip_app.serve.app`` and at ``/docs`` of a running server.
"""

from __future__ import annotations

import argparse
import errno
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xclip_app.exit_codes import UsageError
from xclip_app.inference_args import (
    DEFAULT_MODEL,
    add_model_arguments,
    add_view_arguments,
    classifier_from_args,
    load_model_from_args,
    model_from_index,
    read_labels,
)
from xclip_app.live_args import (
    SOURCE_HELP,
    add_live_arguments,
    live_options_given,
    watcher_settings,
)
from xclip_app.option_types import positive_float

if TYPE_CHECKING:
    from xclip import XCLIP
    from xclip.inference import VideoClassifier
    from xclip_app.serve.live_view import LiveView

NAME = "serve"
HELP = "start a local web page + JSON API to classify videos with your own labels"

DEFAULT_LABELS = "playing guitar,riding a bike,cooking,dancing,swimming"
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p, None, f" (default: the --index library's model, else {DEFAULT_MODEL})")
    add_view_arguments(p)
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    g.add_argument(
        "--port", type=int, default=8000, help="port (default %(default)s; 0 = any free)"
    )
    g.add_argument(
        "--labels",
        default=DEFAULT_LABELS,
        help="labels pre-filled on the page and used by API calls without labels",
    )
    g.add_argument("--labels-file", help="the same from a file (one label per line)")
    g.add_argument("--template", default="{}", help="default prompt template (default: {})")
    g.add_argument("--videos-dir", help="a folder whose videos the page offers to pick")
    g.add_argument(
        "--max-upload-mb",
        type=positive_float(),
        default=100.0,
        help="upload size limit in MiB (default 100)",
    )
    g.add_argument(
        "--max-upload-memory-mb",
        type=positive_float(),
        help="upload bytes held in memory at once, all requests together; more get a 503 "
        "(default: 2 x --max-upload-mb)",
    )
    g.add_argument(
        "--max-connections",
        type=int,
        default=512,
        help="open connections at once; more get a 503 (default %(default)s)",
    )
    g.add_argument(
        "--max-pixels",
        type=positive_float(),
        default=8.3,
        metavar="MILLIONS",
        help="largest frame, in millions of pixels (width x height), a video may have; larger "
        "ones are refused before decoding (default %(default)s: 3840x2160)",
    )
    g.add_argument(
        "--decode-workers",
        type=int,
        default=2,
        help="videos decoded at once, outside the model (default %(default)s)",
    )
    g.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host header is NAME (repeatable; .example.com allows "
        "its subdomains). Loopback names, IP addresses and, when --host is not loopback, this "
        "machine's name are always allowed",
    )
    g.add_argument("--top-k", type=int, default=0, help="labels returned (default 0 = all)")
    s = p.add_argument_group("search view (docs/serve.md)")
    s.add_argument(
        "--index",
        metavar="LIB",
        help="a moments library (`xclip-video embed VIDEOS --window S -o LIB`): adds the page's "
        "Search view, to find moments by a text or an example clip and play them. It must come "
        "from the served model's weights",
    )
    lv = p.add_argument_group("live view")
    lv.add_argument(
        "--live",
        metavar="SOURCE",
        help="add the Live view: recognise the labels on this source while it plays (as "
        "`watch` does; the page cannot open another): " + SOURCE_HELP + " (with --realtime)",
    )
    add_live_arguments(p, " (--live)")


def live_view(
    args: argparse.Namespace, model: XCLIP, clf: VideoClassifier, settings: dict[str, Any]
) -> LiveView:
    """The Live view of ``--live``: its own classifier over the same weights (one view per
    window, as in ``watch``; eager: a second compiled copy would cost its own compile)."""
    from xclip.inference import VideoClassifier  # lazy: CLI start-up
    from xclip_app.serve.live_view import LiveView  # lazy: CLI start-up

    live_clf = VideoClassifier(
        model, clf.labels, template=clf.template, device=args.device,
        precision=args.precision, compile=False,
    )  # fmt: skip
    return LiveView(live_clf, args.live, settings)


def run(args: argparse.Namespace) -> int:
    from xclip_app.serve import ServeConfig, make_server  # lazy: CLI start-up

    if args.max_upload_mb <= 0:
        raise UsageError(f"--max-upload-mb must be > 0, got {args.max_upload_mb:g}")
    memory_mb = args.max_upload_memory_mb
    if memory_mb is None:
        memory_mb = 2 * args.max_upload_mb
    if memory_mb < args.max_upload_mb:
        raise UsageError(
            f"--max-upload-memory-mb ({memory_mb:g}) must be at least --max-upload-mb "
            f"({args.max_upload_mb:g})"
        )
    if args.max_connections < 1:
        raise UsageError(f"--max-connections must be >= 1, got {args.max_connections}")
    if args.decode_workers < 1:
        raise UsageError(f"--decode-workers must be >= 1, got {args.decode_workers}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {args.port}")
    live = None
    if args.live is not None:
        if args.live == "-":
            raise UsageError(
                "--live -: a server does not read its stdin; give a URL, device or file"
            )
        live = watcher_settings(args, args.live)
    elif live_options_given(args):
        raise UsageError(f"{', '.join(live_options_given(args))}: options of --live SOURCE")
    if args.labels_file:
        args.labels = None
    labels = read_labels(args)
    videos_dir = Path(args.videos_dir) if args.videos_dir else None
    if videos_dir is not None and not videos_dir.is_dir():
        raise UsageError(f"--videos-dir {videos_dir} is not a folder")
    index = None
    if args.index:
        from xclip.inference import load_moments  # lazy: CLI start-up

        index = load_moments(args.index)
        recorded = index.model.get("source")
        if args.model is None and (not recorded or recorded == "XCLIP"):
            raise UsageError(f"{args.index} does not record its model; pass --model")
        args.model = args.model or model_from_index(recorded, args.index)
    args.model = args.model or DEFAULT_MODEL
    model = load_model_from_args(args)
    clf = classifier_from_args(args, model, labels)
    views = []
    if index is not None:
        from xclip_app.serve.search_view import SearchView  # lazy: CLI start-up

        views.append(SearchView(args.index, clf, index))
    config = ServeConfig(
        model_name=args.model,
        labels=clf.labels,
        template=clf.template,
        videos_dir=videos_dir,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_upload_memory_bytes=int(memory_mb * 2**20),
        max_connections=args.max_connections,
        max_pixels=max(1, int(args.max_pixels * 1e6)),
        decode_workers=args.decode_workers,
        allow_hosts=list(args.allow_host),
        top_k=args.top_k,
    )
    if live is not None:
        views.append(live_view(args, model, clf, live))
    try:
        server = make_server(clf, config, args.host, args.port, views=tuple(views))
    except OSError as e:
        fix = "pick another --port" if e.errno == errno.EADDRINUSE else "check --host"
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({e.strerror or e}); {fix}"
        ) from None
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # (no start-up chatter)
    if not server.loopback:
        logger.warning(
            "listening on %s: other machines can reach this server; it has no authentication. "
            "Requests must name it by IP address, this machine's name or an --allow-host name",
            args.host,
        )
    print(f"xclip-video serve: open {server.url}  (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
