"""A small local web server for X-CLIP inference: a page and a JSON API (standard library only).

Routes::

    GET  /                 the page (upload or pick a video, type labels, see frames + chart)
    GET  /static/app.js    its script and stylesheet (a fixed list: nothing else is served)
    GET  /api/info         model, frame count, default labels, upload limit, pickable videos
    POST /api/classify     classify a video:
         * upload: body = the video file, Content-Type video/* or application/octet-stream,
           options in the query string: ?labels=a,b,c (or repeated &label=...)&template=...&name=...
         * pick:   Content-Type application/json, {"video": "relative/path.mp4", "labels": [...],
           "template": "..."}; the path must be one that ``/api/info`` lists.

Every answer is JSON, errors included: ``{"error": "...", "status": N}`` with 400 (bad labels,
options, JSON or request syntax), 403 (path outside the folder, Host not allowed), 404, 405
(method), 408 (the request did not arrive in time), 411 (no Content-Length), 413 (upload too
large), 415 (not a video content type), 422 (not a readable video), 431 (headers too large),
503 (too many connections, or too many upload bytes held at once; ``Retry-After`` says when to
try again). A bug of the server is the one 500: ``{"error": "internal error ..."}``, with the
traceback in the server's log.

Hostile clients and files (``docs/reliability.md`` lists what was tried):

* the request line and headers must arrive within ``request_timeout`` and a body within
  ``body_timeout`` plus the time it needs at ``MIN_UPLOAD_RATE`` (:mod:`.request_stream`),
  however slowly the bytes trickle in; a connection past ``max_connections`` gets a quick 503;
  upload bytes held in memory, all requests together, stay under ``max_upload_memory_bytes``;
* uploads are read into memory (never written to disk) and every video is decoded with FFmpeg
  restricted to that one file or buffer and to real video containers (``untrusted=True`` of
  :class:`~xclip.data.video.PyAVReader`): a playlist cannot make it read other files or URLs;
  only the videos the listing shows (video extension, inside the folder) can be picked;
* the ``Host`` header must name this server (:mod:`.allowed_hosts`, DNS-rebinding protection),
  on whatever address it binds; no CORS headers, so other web sites cannot read the answers; a
  Content-Security-Policy without inline script; error messages name files relative to the
  video folder, never by absolute path.
"""

from __future__ import annotations

import base64
import contextlib
import io
import ipaddress
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

from xclip.data.video import VIDEO_EXTENSIONS, VideoDecodeError
from xclip.errors import InputError
from xclip.inference import PreparedVideo, VideoClassifier, check_labels

from .allowed_hosts import AllowedHosts, host_name
from .request_stream import RequestStream, RequestTimeout

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
UPLOAD_TYPES = ("application/octet-stream",)  # and every video/*
MAX_JSON_BYTES = 64 * 1024
MAX_LABELS = 1000
MAX_PATH_CHARS = 1024
MIN_UPLOAD_RATE = 256 * 1024  # bytes/s a body must average (after body_timeout's grace)
SEND_TIMEOUT = 30.0  # seconds to hand an answer to a client that does not read it
RETRY_AFTER = "5"  # seconds, for 503 answers

# an absolute path inside a message (POSIX or Windows); group 1 is its last component
_ABS_PATH = re.compile(r"""(?<![\w.:/\\])(?:/|[A-Za-z]:\\)(?:[^\s'"/\\]+[/\\])*([^\s'"/\\]+)""")


class ApiError(Exception):
    """An answer other than 200, with its one-line message (``headers``: extra headers)."""

    def __init__(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class ServeConfig:
    """What the server needs besides the classifier (sizes in bytes, times in seconds)."""

    model_name: str = ""
    labels: list[str] = field(default_factory=list)
    template: str = "{}"
    videos_dir: Path | None = None
    max_upload_bytes: int = 100 * 1024 * 1024
    top_k: int = 0  # 0 = all labels
    thumb_height: int = 96
    allow_hosts: list[str] = field(default_factory=list)  # --allow-host, beyond the defaults
    max_connections: int = 32  # open connections; more get a 503 at once
    max_upload_memory_bytes: int = 200 * 1024 * 1024  # upload bytes held at once, all requests
    request_timeout: float = 10.0  # the request line and headers (and a keep-alive wait)
    body_timeout: float = 30.0  # grace for a body, plus its size at MIN_UPLOAD_RATE
    decode_timeout: float = 120.0  # opening and reading one video


def redact_paths(text: str, root: Path | None = None) -> str:
    """``text`` with paths inside ``root`` made relative to it and other absolute paths cut to
    their last component (exception texts name files; the client must not learn the layout)."""
    if root is not None:
        for r in {str(root.resolve()), str(root.absolute())}:
            text = text.replace(r + os.sep, "")
    return _ABS_PATH.sub(lambda m: m.group(1), text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


class XCLIPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` holding the classifier; model calls are serialised by a lock.

    One thread per connection, at most ``config.max_connections`` of them: a connection past
    that is answered 503 by the accepting thread and closed.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], classifier: VideoClassifier, config: ServeConfig
    ) -> None:
        self.classifier = classifier
        self.config = config
        # the classifier's video path, for a stranger's file: FFmpeg restricted to the one file
        self.processor = classifier.processor.replace(
            backend="pyav", timeout=config.decode_timeout, untrusted=True
        )
        self.lock = threading.Lock()
        self.static = {
            route: ((STATIC_DIR / name).read_bytes(), ctype)
            for route, (name, ctype) in STATIC_FILES.items()
        }
        host = str(address[0])
        # an IPv6 address (--host ::1) needs an IPv6 socket
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.loopback = _is_loopback(host)
        self.allowed_hosts = AllowedHosts(host, config.allow_hosts, loopback=self.loopback)
        self.slots = threading.BoundedSemaphore(config.max_connections)
        self.connections = 0  # open connections being served (each has a thread)
        self._connections_lock = threading.Lock()
        self._refused, self._refused_logged = 0, -1e9  # connections refused since last logged
        self._held_lock = threading.Lock()
        self.held_bytes = 0
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"

    # -- connections ------------------------------------------------------------------------
    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self._refuse_busy(request)
            return
        self._count_connection(+1)
        try:
            super().process_request(request, client_address)
        except BaseException:  # the thread did not start: give its slot back
            self._connection_done()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connection_done()

    def _count_connection(self, delta: int) -> None:
        with self._connections_lock:
            self.connections += delta

    def _connection_done(self) -> None:
        self._count_connection(-1)
        self.slots.release()

    def _refuse_busy(self, sock: socket.socket) -> None:
        """503 without a thread: one non-blocking send on the accepting thread, then close."""
        n = self.config.max_connections
        body = json.dumps(
            {
                "error": f"the server is busy: {n} connections are open (its "
                f"--max-connections); try again in a few seconds",
                "status": 503,
            }
        ).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: {RETRY_AFTER}\r\nConnection: close\r\n\r\n"
        ).encode()
        now = time.monotonic()
        self._refused += 1
        if now - self._refused_logged > 10:  # (a flood of connections is not a flood of logs)
            logger.warning(
                "refused %d connection(s): %d are open (--max-connections)", self._refused, n
            )
            self._refused, self._refused_logged = 0, now
        with contextlib.suppress(OSError):
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.recv(65536)  # what already arrived (unread data turns the close into a reset)
            sock.send(head + body)
        self.shutdown_request(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):  # the client went away or stalled
            logger.debug("connection from %s ended: %s", client_address[0], exc)
        else:
            logger.exception("error while serving %s", client_address[0])

    @contextlib.contextmanager
    def holding(self, nbytes: int) -> Iterator[None]:
        """Count ``nbytes`` of request body as held in memory while the block runs; 503 when
        that would pass ``max_upload_memory_bytes``."""
        limit = self.config.max_upload_memory_bytes
        with self._held_lock:
            if self.held_bytes + nbytes > limit:
                raise ApiError(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    f"the server already holds {self.held_bytes / 2**20:.1f} MiB of uploads "
                    f"(its --max-upload-memory-mb is {limit / 2**20:.1f}); try again in a few "
                    f"seconds",
                    {"Retry-After": RETRY_AFTER},
                )
            self.held_bytes += nbytes
        try:
            yield
        finally:
            with self._held_lock:
                self.held_bytes -= nbytes

    # -- the videos of the folder -----------------------------------------------------------
    def _pickable(self, path: Path, root: Path) -> bool:
        """A file with a video extension whose real path (symlinks followed) is inside ``root``
        and has a video extension too."""
        try:
            if path.suffix.lower() not in VIDEO_EXTENSIONS or not path.is_file():
                return False
            real = path.resolve()
        except (OSError, RuntimeError):  # unreadable entry, name too long, symlink loop (<3.13)
            return False
        return _inside(real, root) and real.suffix.lower() in VIDEO_EXTENSIONS

    def list_videos(self) -> list[str]:
        root = self.config.videos_dir
        if root is None:
            return []
        real_root = root.resolve()
        out = [
            p.relative_to(root).as_posix()
            for p in sorted(root.rglob("*"))
            if self._pickable(p, real_root)
        ]
        return out[:10000]

    def resolve_video(self, rel: Any) -> Path:
        """A picked video: a relative path that the listing shows."""
        root = self.config.videos_dir
        if root is None:
            raise ApiError(HTTPStatus.BAD_REQUEST, "this server has no video folder (--videos-dir)")
        if not isinstance(rel, str) or not rel.strip() or len(rel) > MAX_PATH_CHARS:
            raise ApiError(HTTPStatus.BAD_REQUEST, "'video' must be a path relative to the folder")
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts or "\x00" in rel:
            raise ApiError(
                HTTPStatus.FORBIDDEN,
                f"video path {rel!r} must be relative, inside the video folder",
            )
        real_root = root.resolve()
        missing = ApiError(
            HTTPStatus.NOT_FOUND,
            f"no video {rel!r} in the folder (GET /api/info lists the videos to pick)",
        )
        try:
            full = (root / p).resolve()
        except (OSError, RuntimeError):  # name too long, symlink loop (Python < 3.13)
            raise missing from None
        if not _inside(full, real_root):
            raise ApiError(HTTPStatus.FORBIDDEN, f"video path {rel!r} leaves the video folder")
        if not self._pickable(root / p, real_root):
            raise missing
        return full

    # -- the work ---------------------------------------------------------------------------
    def decode(self, video: Path | bytes, name: str) -> PreparedVideo:
        """Decode a stranger's video: FFmpeg restricted to that file (``untrusted=True``), a time
        limit, and only the decoder's own errors answered as 422 (anything else is a bug)."""
        source = str(video) if isinstance(video, Path) else video
        try:
            return self.processor(source, keep_frames=True, name=name)
        except VideoDecodeError as e:
            reason = getattr(e, "decoder_reason", e.reason)
            reason = redact_paths(reason, self.config.videos_dir).splitlines()[0]
            raise ApiError(
                HTTPStatus.UNPROCESSABLE_ENTITY, f"{name} could not be read as a video: {reason}"
            ) from None

    def classify(
        self, video: Path | bytes, name: str, labels: list[str], template: str | None
    ) -> dict[str, Any]:
        clf = self.classifier
        try:
            labels = check_labels(labels)
        except (ValueError, TypeError) as e:
            raise ApiError(HTTPStatus.BAD_REQUEST, str(e)) from None
        if len(labels) > MAX_LABELS:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, f"at most {MAX_LABELS} labels, got {len(labels)}"
            )
        template = template if template else self.config.template
        if template.count("{}") != 1:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"template must contain {{}} once, where the label goes, got {template!r}",
            )
        t0 = time.perf_counter()
        with self.lock:
            prepared = self.decode(video, name)
            pred = clf.predict(prepared, labels, template)
        k = self.config.top_k or None
        fps = prepared.fps or 0.0
        frames = []
        if prepared.frames is not None:
            for i, img in zip(prepared.frame_indices[0], prepared.frames[0], strict=True):
                frames.append(
                    {
                        "index": int(i),
                        "time": round(int(i) / fps, 3) if fps else None,
                        "image": _jpeg_data_url(img, self.config.thumb_height),
                    }
                )
        return {
            "video": name,
            "model": self.config.model_name,
            "template": template,
            "num_frames": clf.num_frames,
            "video_frames": prepared.num_frames,
            "fps": round(fps, 3) if fps else None,
            "duration": round(prepared.duration, 3) if prepared.duration else None,
            "predictions": [{"label": lb, "prob": round(p, 6)} for lb, p in pred.top(k)],
            "frames": frames,
            "timings": {key: round(v, 4) for key, v in pred.timings.items()}
            | {"total": round(time.perf_counter() - t0, 4)},
        }


def _jpeg_data_url(frame, height: int) -> str:
    """uint8 ``[H, W, 3]`` -> a small JPEG as a data URL (the frames the model saw, before crop)."""
    from PIL import Image  # lazy: optional dependency

    img = Image.fromarray(frame)
    if img.height > height:
        img = img.resize((max(1, round(img.width * height / img.height)), height), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _split_labels(values: list[str]) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (``?labels=a,b``; ``?label=`` values are kept whole)."""
    out = []
    for v in values:
        out.extend(s.strip() for s in v.split(","))
    return [s for s in out if s]


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Handler(BaseHTTPRequestHandler):
    """One connection: requests are read through a :class:`RequestStream` (deadlines), every
    answer is JSON (``send_error`` included), and a bug is a logged 500."""

    server: XCLIPServer
    rfile: RequestStream  # type: ignore[assignment]
    server_version = "xclip-serve/1"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self.rfile = RequestStream(self.connection)
        self._responded = False
        self._body_read = True

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.info("%s %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        # (what the standard library sets while parsing; stays so when no request arrives)
        self.command, self.requestline = None, ""
        self.request_version = self.default_request_version
        self._responded = False
        self._body_read = True
        self.rfile.set_deadline(self.server.config.request_timeout)
        super().handle_one_request()  # a TimeoutError there closes the connection
        if self.rfile.timed_out:
            self.close_connection = True
            if self.rfile.received and not self._responded:  # part of a request came: say why
                with contextlib.suppress(OSError):
                    self._refuse_to_client(
                        HTTPStatus.REQUEST_TIMEOUT,
                        f"the request line and headers did not arrive within "
                        f"{self.server.config.request_timeout:g} s",
                    )

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == self.default_request_version:  # "GET /": HTTP/0.9
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not supported")
            return False
        return True

    # -- responses --------------------------------------------------------------------------
    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        ctype: str,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        # a client that does not read its answer cannot hold the thread either
        self.connection.settimeout(SEND_TIMEOUT)
        self._responded = True
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if ctype.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Frame-Options", "DENY")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(
        self,
        status: HTTPStatus,
        obj: Any,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._send(
            status, json.dumps(obj).encode(), "application/json; charset=utf-8", close, headers
        )

    def _error(self, e: ApiError, close: bool = False) -> None:
        self._json(e.status, {"error": e.message, "status": int(e.status)}, close, e.headers)

    def _refuse_to_client(
        self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """An error before or outside a parsed request: status line and headers always sent."""
        if self.request_version == self.default_request_version:  # else HTTP/0.9: body only
            self.request_version = "HTTP/1.0"
        self._error(ApiError(status, message, headers), close=True)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's errors (bad request line, unknown method, headers too long,
        ...) as JSON, all 4xx: an unknown method is 405, not 501."""
        status = HTTPStatus(code)
        headers = {}
        if status == HTTPStatus.NOT_IMPLEMENTED:
            status = HTTPStatus.METHOD_NOT_ALLOWED
            message = f"method {_short(str(self.command), 40)!r} is not supported; use GET or POST"
            headers["Allow"] = "GET, HEAD, POST"
        elif status == HTTPStatus.HTTP_VERSION_NOT_SUPPORTED:
            status = HTTPStatus.BAD_REQUEST
            message = f"{message or status.phrase}; send HTTP/1.1"
        self.log_error("code %d, message %s", int(status), _short(str(message)))
        self._refuse_to_client(status, _short(message or status.phrase), headers)

    # -- requests ---------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch(self._get)

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch(self._post)

    def _dispatch(self, route: Callable[[SplitResult], None]) -> None:
        """Host check, then ``route``; every outcome is a JSON answer (a bug: logged, 500)."""
        if self.command != "POST" and (
            self.headers.get("Content-Length", "0").strip() != "0"
            or self.headers.get("Transfer-Encoding")
        ):
            self._body_read = False  # a GET with a body: not read, so the connection closes
        try:
            host = self.headers.get("Host") or ""
            if not self.server.allowed_hosts.allows(host):
                name = host_name(host)
                raise ApiError(
                    HTTPStatus.FORBIDDEN,
                    f"Host {_short(host, 100)!r} is not allowed; open the page at "
                    f"{self.server.url}"
                    + (
                        f", or start the server with --allow-host {_short(name, 100)}"
                        if name
                        else ""
                    ),
                )
            try:
                url = urlsplit(self.path)
            except ValueError:
                raise ApiError(HTTPStatus.BAD_REQUEST, "malformed request target") from None
            route(url)
        except ApiError as e:
            # a refused body is not read: close the connection instead of draining it
            self._error(e, close=not self._body_read)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away during %s", _short(self.path))
            self.close_connection = True
        except Exception as e:  # a bug, not a user mistake: logged with traceback, generic answer
            self.close_connection = True
            if isinstance(e, TimeoutError) and self._responded:  # the answer's SEND_TIMEOUT
                logger.debug("client did not read its answer to %s", _short(self.path))
                return
            logger.exception("error while handling %s %s", self.command, _short(self.path))
            if not self._responded:
                self._json(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    {"error": "internal error (see the server log)", "status": 500},
                    close=True,
                )

    def _get(self, url: SplitResult) -> None:
        path = url.path
        if path in self.server.static:
            body, ctype = self.server.static[path]
            self._send(HTTPStatus.OK, body, ctype, close=not self._body_read)
        elif path == "/api/info":
            self._json(HTTPStatus.OK, self._info(), close=not self._body_read)
        elif path == "/api/health":
            self._json(HTTPStatus.OK, {"ok": True}, close=not self._body_read)
        elif path == "/api/classify":
            raise ApiError(
                HTTPStatus.METHOD_NOT_ALLOWED, "use POST /api/classify", {"Allow": "POST"}
            )
        else:
            raise ApiError(HTTPStatus.NOT_FOUND, f"not found: {_short(path)}")

    def _info(self) -> dict[str, Any]:
        clf, cfg = self.server.classifier, self.server.config
        pre = clf.model.preprocess
        return {
            "model": cfg.model_name,
            "num_frames": clf.num_frames,
            "image_size": clf.model.cfg.image_size,
            "mean": list(pre.mean),
            "std": list(pre.std),
            "views": {"clips": clf.num_clips, "crops": clf.num_crops},
            "labels": cfg.labels,
            "template": cfg.template,
            "max_upload_bytes": cfg.max_upload_bytes,
            "videos": self.server.list_videos(),
        }

    def _post(self, url: SplitResult) -> None:
        self._body_read = False
        if url.path != "/api/classify":
            raise ApiError(HTTPStatus.NOT_FOUND, f"not found: {_short(url.path)}")
        self._classify(parse_qs(url.query))

    def _body_length(self, limit: int, what: str) -> int:
        """The body's size from the headers, checked against ``limit`` before reading it."""
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
        length = lengths[0].strip()
        if len(set(lengths)) > 1 or not (length.isascii() and length.isdigit()):
            raise ApiError(HTTPStatus.BAD_REQUEST, f"bad Content-Length {_short(length, 40)!r}")
        n = int(length)
        if n > limit:
            raise ApiError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{what} is {n / 2**20:.1f} MiB; the limit is {limit / 2**20:.1f} MiB "
                f"(start the server with a larger --max-upload-mb, or cut the video)",
            )
        if n == 0:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"the {what} is empty")
        return n

    def _read_body(self, n: int, what: str) -> bytes:
        """``n`` bytes of body before ``body_timeout`` plus ``n`` at ``MIN_UPLOAD_RATE``."""
        cfg = self.server.config
        seconds = cfg.body_timeout + n / MIN_UPLOAD_RATE
        self.rfile.set_deadline(seconds)
        try:
            body = self.rfile.read(n)
        except RequestTimeout:
            raise ApiError(
                HTTPStatus.REQUEST_TIMEOUT,
                f"the {what} did not arrive within {seconds:.0f} s "
                f"({self.rfile.received} of {n} bytes)",
            ) from None
        if len(body) != n:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, f"the {what} was cut short ({len(body)} of {n} bytes)"
            )
        self._body_read = True
        return body

    def _classify(self, query: dict[str, list[str]]) -> None:
        cfg = self.server.config
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/json":
            n = self._body_length(MAX_JSON_BYTES, "JSON request")
            with self.server.holding(n):
                result = self._classify_picked(self._read_body(n, "JSON request"))
        elif ctype.startswith("video/") or ctype in UPLOAD_TYPES:
            n = self._body_length(cfg.max_upload_bytes, "upload")
            with self.server.holding(n):
                body = self._read_body(n, "upload")
                labels = _split_labels(query.get("labels", []))
                labels += [s.strip() for s in query.get("label", []) if s.strip()]
                if not labels and not query.get("labels") and not query.get("label"):
                    labels = list(cfg.labels)
                name = os.path.basename((query.get("name") or ["upload"])[0])[:200] or "upload"
                template = (query.get("template") or [None])[0]
                result = self.server.classify(body, name, labels, template)
                del body
        else:
            raise ApiError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"Content-Type {_short(ctype, 80) or '(none)'!r} is not a video: upload the "
                f"file's bytes with Content-Type video/* (e.g. video/mp4) or "
                f"application/octet-stream, or send application/json to pick a video of the "
                f"server's folder",
            )
        self._json(HTTPStatus.OK, result)

    def _classify_picked(self, body: bytes) -> dict[str, Any]:
        cfg = self.server.config
        try:
            req = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {e}") from None
        except RecursionError:  # the parser's own limit, reached by the client's nesting
            raise ApiError(HTTPStatus.BAD_REQUEST, "the JSON body is nested too deeply") from None
        if not isinstance(req, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "the JSON body must be an object")
        labels = req.get("labels", cfg.labels)
        if isinstance(labels, str):
            labels = _split_labels([labels])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ApiError(HTTPStatus.BAD_REQUEST, "'labels' must be a list of strings")
        if "video" not in req:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                'JSON requests pick a video of the server\'s folder: {"video": "name.mp4"}; '
                "to upload a file, POST its bytes with Content-Type video/*",
            )
        path = self.server.resolve_video(req["video"])
        template = req.get("template")
        if template is not None and not isinstance(template, str):
            raise ApiError(HTTPStatus.BAD_REQUEST, "'template' must be a string")
        return self.server.classify(path, req["video"], labels, template)


def make_server(
    classifier: VideoClassifier, config: ServeConfig, host: str = "127.0.0.1", port: int = 8000
) -> XCLIPServer:
    """A ready :class:`XCLIPServer` (call ``serve_forever()``; ``port=0`` picks a free port)."""
    if config.videos_dir is not None:
        config.videos_dir = Path(config.videos_dir)
        if not config.videos_dir.is_dir():
            raise FileNotFoundError(f"--videos-dir {config.videos_dir} is not a folder")
    if config.max_connections < 1:
        raise InputError(f"--max-connections must be >= 1, got {config.max_connections}")
    if config.max_upload_memory_bytes < config.max_upload_bytes:
        raise InputError(
            f"--max-upload-memory-mb ({config.max_upload_memory_bytes / 2**20:g}) must be at "
            f"least --max-upload-mb ({config.max_upload_bytes / 2**20:g}), or no upload of the "
            f"largest size could ever be held"
        )
    return XCLIPServer((host, port), classifier, config)
