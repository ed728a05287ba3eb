"""The ASGI app: the page, its two views' API (Classify and Timeline) and the videos to play.

Routes (OpenAPI docs at ``/docs``, the schema at ``/openapi.json``)::

    GET  /                    the page; /static/app.js and /static/style.css its script and style
    GET  /api/info            model, labels, limits, the videos of the folder to pick
    GET  /api/health          {"ok": true}
    POST /api/classify        ranked labels of one video
    POST /api/timeline        each label's probability per window (?window=&stride= seconds)
    GET  /api/videos/{name}   a video of the folder, with range requests (the page seeks in it)

A video is sent to the POST routes in one of two ways:

* upload: the body is the file, Content-Type ``video/*`` or ``application/octet-stream``, options
  in the query string: ``?labels=a,b,c`` (or repeated ``&label=...``), ``&template=...``,
  ``&name=...``, ``&window=&stride=``;
* pick: Content-Type ``application/json``, ``{"video": "relative/path.mp4", "labels": [...],
  "template": "...", "window": 2, "stride": 1}``; the path must be one ``/api/info`` lists.

Every answer other than 200 is ``{"error": "...", "status": N}`` (:mod:`.api_errors`): 400 (bad
labels, options, JSON, request syntax), 403 (out of the folder, Host not allowed), 404, 405, 408
(too slow), 411 (no Content-Length), 413 (upload too large, frames above the pixel cap), 415 (not
a video content type), 422 (not a readable video), 431, 503 (busy; ``Retry-After``). A bug is
the one 500, ``{"error": "internal error ..."}``, with its traceback in the server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from xclip.errors import InputError
from xclip.inference import VideoClassifier
from xclip.inference.timeline import TimelineError, frame_windows

from .api_errors import ApiError, short
from .batching import DynamicBatcher
from .config import ServeConfig
from .decode import DecodePool, Limits, open_checked, read_spans
from .label_checks import request_labels
from .page_views import PageView
from .results import classify_result, timeline_result
from .uploads import UploadMemory, body_length, read_body
from .video_folder import VideoFolder

__all__ = ["Service", "create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
UPLOAD_TYPES = ("application/octet-stream",)  # and every video/*
MAX_JSON_BYTES = 64 * 1024
_BODY = {
    "required": True,
    "content": {
        "video/*": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["video"],
                "properties": {
                    "video": {"type": "string", "description": "a path GET /api/info lists"},
                    "labels": {"type": "array", "items": {"type": "string"}},
                    "template": {"type": "string"},
                    "window": {"type": "number"},
                    "stride": {"type": "number"},
                },
            }
        },
    },
}


# query options of the POST routes (documented at /docs)
Labels = Annotated[list[str] | None, Query(description="labels, comma separated")]
One = Annotated[list[str] | None, Query(description="one label, commas kept (repeatable)")]
Seconds = Annotated[float | None, Query(description="seconds (timeline windows and their step)")]


@dataclass
class VideoRequest:
    """One POST: the video (bytes of an upload, or a picked file) and what to do with it."""

    source: Path | bytes
    name: str
    labels: list[str]
    template: str
    window: float | None = None
    stride: float | None = None


class Service:
    """The server's state: classifier, batcher, decode pool, upload memory, video folder."""

    def __init__(
        self, clf: VideoClassifier, config: ServeConfig, views: tuple[PageView, ...] = ()
    ) -> None:
        self.classifier = clf
        self.config = config
        self.views = tuple(views)
        self.folder = VideoFolder(config.videos_dir)
        self.uploads = UploadMemory(config.max_upload_memory_bytes)
        self.decoder = DecodePool(config.decode_workers)
        self.limits = Limits(config.decode_timeout, config.max_pixels, config.videos_dir)
        self.batcher = DynamicBatcher(
            clf, config.max_batch_views or clf.batch_size, config.batch_wait
        )
        for view in self.views:
            view.attach(self)

    def closing(self) -> None:
        """The server stops: views with open streams (``closing()``, optional) end them."""
        for view in self.views:
            hook = getattr(view, "closing", None)
            if hook is not None:
                hook()

    def info(self) -> dict[str, Any]:
        clf, cfg = self.classifier, self.config
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
            "max_pixels": cfg.max_pixels,
            "max_windows": cfg.max_windows,
            "videos": self.folder.list_videos(),
            **{view.name: view.info() for view in self.views},
        }

    # -- reading a request --------------------------------------------------------------------
    def _options(self, labels: Any, template: Any, name: str) -> tuple[list[str], str]:
        if labels is None:
            labels = list(self.config.labels)
        labels = request_labels(labels)
        if template is not None and not isinstance(template, str):
            raise ApiError(400, "'template' must be a string")
        template = template or self.config.template
        if template.count("{}") != 1:
            raise ApiError(
                400, f"template must contain {{}} once, where the label goes, got {template!r}"
            )
        return labels, template

    @contextlib.asynccontextmanager
    async def incoming(
        self, request: Request, query: dict[str, Any]
    ) -> AsyncIterator[VideoRequest]:
        """The request's video and options, its body held in memory while the block runs."""
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype == "application/json":
            n = body_length(request, MAX_JSON_BYTES, "JSON request")
            with self.uploads.hold(n):
                yield self._picked(await read_body(request, n, "JSON request", self._grace))
        elif ctype.startswith("video/") or ctype in UPLOAD_TYPES:
            n = body_length(request, self.config.max_upload_bytes, "upload")
            with self.uploads.hold(n):
                body = await read_body(request, n, "upload", self._grace)
                labels = _split_labels(query["labels"] or [])
                labels += [s.strip() for s in query["label"] or [] if s.strip()]
                if not labels and not query["labels"] and not query["label"]:
                    labels = None
                name = os.path.basename(query["name"] or "upload")[:200] or "upload"
                labels, template = self._options(labels, query["template"], name)
                yield VideoRequest(body, name, labels, template, query["window"], query["stride"])
        else:
            raise ApiError(
                415,
                f"Content-Type {short(ctype, 80) or '(none)'!r} is not a video: upload the file's "
                f"bytes with Content-Type video/* (e.g. video/mp4) or application/octet-stream, "
                f"or send application/json to pick a video of the server's folder",
            )

    @property
    def _grace(self) -> float:
        return self.config.body_timeout

    def _picked(self, body: bytes) -> VideoRequest:
        try:
            req = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, f"the body is not valid JSON: {e}") from None
        except RecursionError:  # the parser's own limit, reached by the client's nesting
            raise ApiError(400, "the JSON body is nested too deeply") from None
        if not isinstance(req, dict):
            raise ApiError(400, "the JSON body must be an object")
        labels = req.get("labels")
        if isinstance(labels, str):
            labels = _split_labels([labels])
        if "video" not in req:
            raise ApiError(
                400,
                'JSON requests pick a video of the server\'s folder: {"video": "name.mp4"}; '
                "to upload a file, POST its bytes with Content-Type video/*",
            )
        path = self.folder.resolve(req["video"])
        labels, template = self._options(labels, req.get("template"), req["video"])
        window, stride = req.get("window"), req.get("stride")
        for key, v in (("window", window), ("stride", stride)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise ApiError(400, f"'{key}' must be a number of seconds")
        return VideoRequest(path, req["video"], labels, template, window, stride)

    # -- the two views ------------------------------------------------------------------------
    async def classify(self, req: VideoRequest) -> dict[str, Any]:
        clf, cfg = self.classifier, self.config
        reader = await self.decoder.run(open_checked, clf, req.source, req.name, self.limits)
        try:
            prepared = await self.decoder.run(
                read_spans, clf, reader, None, name=req.name, limits=self.limits, keep_frames=True,
            )  # fmt: skip
        finally:
            reader.close()
        (pred,) = await self.batcher.predict(prepared, req.labels, req.template)
        return await self.decoder.run(
            classify_result, prepared[0], pred, model=cfg.model_name, template=req.template,
            num_frames=clf.num_frames, top_k=cfg.top_k, thumb_height=cfg.thumb_height,
        )  # fmt: skip

    async def timeline(self, req: VideoRequest) -> dict[str, Any]:
        clf, cfg = self.classifier, self.config
        if req.window is None:
            raise ApiError(400, "a timeline needs ?window= (seconds per window)")
        window, stride = req.window, req.stride if req.stride is not None else req.window
        reader = await self.decoder.run(open_checked, clf, req.source, req.name, self.limits)
        pending: asyncio.Future | None = None
        try:
            meta = reader.metadata
            if not meta.fps or meta.fps <= 0:
                raise ApiError(422, f"{req.name}: the video has no frame rate; no timeline")
            try:
                spans = frame_windows(
                    reader.num_frames, meta.fps, window, stride,
                    max_windows=cfg.max_windows, source=req.name,
                )  # fmt: skip
            except TimelineError as e:
                raise ApiError(400, e.explain(limit="the server's --max-windows")) from None
            except InputError as e:
                raise ApiError(400, str(e)) from None
            # a chunk of windows fills a model call; the next one decodes meanwhile
            per = max(1, self.batcher.max_views // (clf.num_clips * clf.num_crops))
            chunks = [spans[c : c + per] for c in range(0, len(spans), per)]

            def decode(chunk: list[tuple[int, int]]) -> asyncio.Future:
                return asyncio.ensure_future(
                    self.decoder.run(
                        read_spans, clf, reader, chunk, name=req.name, limits=self.limits
                    )
                )

            preds, first = [], None
            pending = decode(chunks[0])
            for k in range(len(chunks)):
                prepared = await pending
                if k + 1 < len(chunks):
                    pending = decode(chunks[k + 1])
                first = first or prepared[0]
                preds += await self.batcher.predict(prepared, req.labels, req.template)
        finally:
            if pending is not None and not pending.done():  # (its thread still reads)
                await asyncio.gather(pending, return_exceptions=True)
            reader.close()
        return timeline_result(
            first, spans, preds, labels=req.labels, model=cfg.model_name,
            template=req.template, window=window, stride=stride,
        )  # fmt: skip


def _split_labels(values: list[str]) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (``?labels=a,b``; ``?label=`` values are kept whole)."""
    out = []
    for v in values:
        out.extend(s.strip() for s in v.split(","))
    return [s for s in out if s]


def _error(e: ApiError) -> JSONResponse:
    headers = dict(e.headers)
    if e.status >= 400 and e.status not in (403, 404, 405):
        headers.setdefault("Connection", "close")  # (a body may be left unread)
    return JSONResponse(
        {"error": e.message, "status": int(e.status)}, status_code=int(e.status), headers=headers
    )


def create_app(service: Service) -> FastAPI:
    """The FastAPI app of ``service`` (start and stop its batcher with the app's lifespan)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.batcher.start()
        for view in service.views:
            await view.start()
        try:
            yield
        finally:
            for view in reversed(service.views):
                await view.stop()
            await service.batcher.stop()
            service.decoder.close()

    app = FastAPI(
        title="xclip-video serve",
        summary="label videos with your own words: a page and a JSON API",
        redoc_url=None,
        lifespan=lifespan,
    )
    index = (STATIC_DIR / "index.html").read_bytes()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        return _error(e)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        what = {404: f"not found: {short(request.url.path)}", 405: "method not allowed here"}
        message = what.get(e.status_code, str(e.detail))
        return _error(ApiError(e.status_code, message, dict(e.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def bad_query(request: Request, e: RequestValidationError) -> JSONResponse:
        errs = e.errors()
        where = ".".join(str(x) for x in errs[0]["loc"]) if errs else "request"
        message = errs[0]["msg"] if errs else "invalid"
        return _error(ApiError(400, f"{where}: {message}"))

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception) -> JSONResponse:
        logger.error("error while handling %s %s", request.method, request.url.path, exc_info=e)
        return _error(ApiError(500, "internal error (see the server log)"))

    @app.get("/", include_in_schema=False)
    async def page() -> Any:
        return Response(index, media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/info", summary="model, labels, limits and the videos to pick")
    async def info() -> dict[str, Any]:
        return service.info()

    @app.get("/api/health", summary="whether the server answers")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    def query(labels, label, template, name, window, stride) -> dict[str, Any]:  # noqa: ANN001
        return dict(labels=labels, label=label, template=template, name=name,
                    window=window, stride=stride)  # fmt: skip

    @app.post("/api/classify", summary="ranked labels of one video",
              openapi_extra={"requestBody": _BODY})  # fmt: skip
    async def classify(
        request: Request, labels: Labels = None, label: One = None,
        template: str | None = None, name: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        q = query(labels, label, template, name, None, None)
        async with service.incoming(request, q) as req:
            return await service.classify(req)

    @app.post("/api/timeline", summary="each label's probability per window of a long video",
              openapi_extra={"requestBody": _BODY})  # fmt: skip
    async def timeline(
        request: Request, labels: Labels = None, label: One = None,
        template: str | None = None, name: str | None = None,
        window: Seconds = None, stride: Seconds = None,
    ) -> dict[str, Any]:  # fmt: skip
        q = query(labels, label, template, name, window, stride)
        async with service.incoming(request, q) as req:
            return await service.timeline(req)

    for view in service.views:
        app.include_router(view.router)

    @app.get("/api/videos/{name:path}", summary="a video of the folder (range requests)")
    async def video(name: str) -> FileResponse:
        return FileResponse(service.folder.resolve(name), headers={"Cache-Control": "no-cache"})

    return app
