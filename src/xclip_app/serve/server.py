"""A small local web server for X-CLIP inference: a page and a JSON API (standard library only).

Routes::

    GET  /                 the page (upload or pick a video, type labels, see frames + chart)
    GET  /static/app.js    its script and stylesheet (a fixed list: nothing else is served)
    GET  /api/info         model, frame count, default labels, upload limit, pickable videos
    POST /api/classify     classify a video:
         * upload: body = the video file, Content-Type video/* or application/octet-stream,
           options in the query string: ?labels=a,b,c (or repeated &label=...)&template=...&name=...
         * pick:   Content-Type application/json, {"video": "relative/path.mp4", "labels": [...],
           "template": "..."}; the path is relative to --videos-dir and must stay inside it.

Responses are JSON; errors are ``{"error": "..."}`` with 400 (bad labels/options), 403 (path
outside the folder, unknown Host), 404, 411 (no Content-Length), 413 (upload too large),
415 (not a video content type), 422 (the file is not a readable video).

Safety: binds 127.0.0.1 by default; uploads are limited in size and read into memory (never
written to disk); on a loopback address requests must carry a loopback ``Host`` header (DNS
rebinding protection); no CORS headers, so other web sites cannot read the API's answers; a
Content-Security-Policy without inline script.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from xclip.data.video import VIDEO_EXTENSIONS
from xclip.inference import VideoClassifier, check_labels

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
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_JSON_BYTES = 64 * 1024
MAX_LABELS = 1000


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ServeConfig:
    """What the server needs besides the classifier."""

    model_name: str = ""
    labels: list[str] = field(default_factory=list)
    template: str = "{}"
    videos_dir: Path | None = None
    max_upload_bytes: int = 100 * 1024 * 1024
    top_k: int = 0  # 0 = all labels
    thumb_height: int = 96


class XCLIPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` holding the classifier; model calls are serialised by a lock."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], classifier: VideoClassifier, config: ServeConfig
    ) -> None:
        self.classifier = classifier
        self.config = config
        self.lock = threading.Lock()
        self.static = {
            route: ((STATIC_DIR / name).read_bytes(), ctype)
            for route, (name, ctype) in STATIC_FILES.items()
        }
        self.loopback = address[0] in LOOPBACK_HOSTS or address[0].startswith("127.")
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"

    # -- the work ---------------------------------------------------------------------------
    def list_videos(self) -> list[str]:
        root = self.config.videos_dir
        if root is None:
            return []
        out = []
        for p in sorted(root.rglob("*")):
            # symlinks that leave the folder are not offered (and refused if asked for)
            if (
                p.is_file()
                and p.suffix.lower() in VIDEO_EXTENSIONS
                and _inside(p.resolve(), root.resolve())
            ):
                out.append(p.relative_to(root).as_posix())
        return out[:10000]

    def resolve_video(self, rel: Any) -> Path:
        """A picked video: a relative path that must stay inside ``videos_dir``."""
        root = self.config.videos_dir
        if root is None:
            raise ApiError(HTTPStatus.BAD_REQUEST, "this server has no video folder (--videos-dir)")
        if not isinstance(rel, str) or not rel.strip():
            raise ApiError(HTTPStatus.BAD_REQUEST, "'video' must be a path relative to the folder")
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts or "\x00" in rel:
            raise ApiError(
                HTTPStatus.FORBIDDEN,
                f"video path {rel!r} must be relative, inside the video folder",
            )
        full = (root / p).resolve()
        if not _inside(full, root.resolve()):
            raise ApiError(HTTPStatus.FORBIDDEN, f"video path {rel!r} leaves the video folder")
        if not full.is_file():
            raise ApiError(HTTPStatus.NOT_FOUND, f"no video {rel!r} in the folder")
        return full

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
            try:
                prepared = clf.prepare(video, keep_frames=True, name=name)
            except (ValueError, OSError, RuntimeError) as e:
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ApiError(
                    HTTPStatus.UNPROCESSABLE_ENTITY,
                    f"{name} could not be read as a video: {msg.removeprefix(name + ': ')}",
                ) from None
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


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


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


class Handler(BaseHTTPRequestHandler):
    server: XCLIPServer
    server_version = "xclip-serve/1"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.info("%s %s", self.address_string(), format % args)

    # -- responses --------------------------------------------------------------------------
    def _send(self, status: HTTPStatus, body: bytes, ctype: str, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        if ctype.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Frame-Options", "DENY")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: Any, close: bool = False) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8", close)

    def _error(self, e: ApiError, close: bool = False) -> None:
        self._json(e.status, {"error": e.message, "status": int(e.status)}, close)

    def _check_host(self) -> None:
        if not self.server.loopback:
            return
        host = (self.headers.get("Host") or "").strip()
        name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0]
        if name not in LOOPBACK_HOSTS:
            raise ApiError(
                HTTPStatus.FORBIDDEN,
                f"Host {host!r} is not allowed; open the page at {self.server.url}",
            )

    # -- GET --------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        try:
            self._check_host()
            path = urlsplit(self.path).path
            if path in self.server.static:
                body, ctype = self.server.static[path]
                self._send(HTTPStatus.OK, body, ctype)
            elif path == "/api/info":
                self._json(HTTPStatus.OK, self._info())
            elif path == "/api/health":
                self._json(HTTPStatus.OK, {"ok": True})
            elif path == "/api/classify":
                raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "use POST /api/classify")
            else:
                raise ApiError(HTTPStatus.NOT_FOUND, f"not found: {path}")
        except ApiError as e:
            self._error(e)

    do_HEAD = do_GET

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

    # -- POST -------------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        try:
            self._check_host()
            url = urlsplit(self.path)
            if url.path != "/api/classify":
                raise ApiError(HTTPStatus.NOT_FOUND, f"not found: {url.path}")
            self._classify(parse_qs(url.query))
        except ApiError as e:
            # a refused body is not read: close the connection instead of draining it
            self._error(e, close=not getattr(self, "_body_read", False))
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away during %s", self.path)
            self.close_connection = True
        except Exception:  # a bug, not a user mistake: logged with traceback, generic answer
            logger.exception("error while handling %s", self.path)
            self._json(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": "internal error (see the server log)"},
                close=True,
            )

    def _read_body(self, limit: int, what: str) -> bytes:
        self._body_read = False
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        length = self.headers.get("Content-Length")
        if length is None:
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
        try:
            n = int(length)
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"bad Content-Length {length!r}") from None
        if n < 0:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"bad Content-Length {length!r}")
        if n > limit:
            raise ApiError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{what} is {n / 2**20:.1f} MiB; the limit is {limit / 2**20:.1f} MiB "
                f"(start the server with a larger --max-upload-mb, or cut the video)",
            )
        if n == 0:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"the {what} is empty")
        body = self.rfile.read(n)
        self._body_read = True
        if len(body) != n:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, f"the {what} was cut short ({len(body)} of {n} bytes)"
            )
        return body

    def _classify(self, query: dict[str, list[str]]) -> None:
        cfg = self.server.config
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/json":
            body = self._read_body(MAX_JSON_BYTES, "JSON request")
            try:
                req = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ApiError(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {e}") from None
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
            result = self.server.classify(path, req["video"], labels, template)
        elif ctype.startswith("video/") or ctype in UPLOAD_TYPES:
            body = self._read_body(cfg.max_upload_bytes, "upload")
            labels = _split_labels(query.get("labels", []))
            labels += [s.strip() for s in query.get("label", []) if s.strip()]
            if not labels and not query.get("labels") and not query.get("label"):
                labels = list(cfg.labels)
            name = os.path.basename((query.get("name") or ["upload"])[0])[:200] or "upload"
            template = (query.get("template") or [None])[0]
            result = self.server.classify(body, name, labels, template)
        else:
            raise ApiError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"Content-Type {ctype or '(none)'!r} is not a video: upload the file's bytes with "
                f"Content-Type video/* (e.g. video/mp4) or application/octet-stream, or send "
                f"application/json to pick a video of the server's folder",
            )
        self._json(HTTPStatus.OK, result)


def make_server(
    classifier: VideoClassifier, config: ServeConfig, host: str = "127.0.0.1", port: int = 8000
) -> XCLIPServer:
    """A ready :class:`XCLIPServer` (call ``serve_forever()``; ``port=0`` picks a free port)."""
    if config.videos_dir is not None:
        config.videos_dir = Path(config.videos_dir)
        if not config.videos_dir.is_dir():
            raise FileNotFoundError(f"--videos-dir {config.videos_dir} is not a folder")
    return XCLIPServer((host, port), classifier, config)
