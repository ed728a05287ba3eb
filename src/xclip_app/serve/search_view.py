"""The Search view of ``xclip-video serve --index LIB``: find moments of a library by a text or
an example clip, see each one's middle frame, play it from its start.

Routes (JSON unless said; every error is ``{"error", "status"}`` as everywhere in the API)::

    GET  /api/search?q=TEXT&top_k=&path=&min_duration=&max_duration=   moments, best first
    POST /api/search/like?top_k=&path=&...  (body: the clip's bytes, video/*)  the same
    GET  /api/search/thumbnails/{id}?t=SECONDS   the frame at t as a JPEG
    GET  /api/search/videos/{id}                 the video, with range requests (seeking)

The options mean what they mean to ``xclip-video search --index``, with the same limits (checked
by :func:`~xclip.inference.moments.check_moment_filters`); ``path`` is a glob over the names the
results show. Videos are named by their number in the library (:mod:`.library_videos`), never by
a path. The library is loaded once, when the server starts, and must come from the served
model's weights (a mismatch stops ``serve`` with one line).

Where the work runs: a text is encoded on the batcher's model thread (never beside a batch),
an example clip is read by the service's strict decoder and upload limits, thumbnails are made
in its decode pool (:mod:`.thumbnails`), and FAISS searches one at a time on a thread of their
own, off the event loop.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import os
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from xclip.errors import InputError
from xclip.inference import MomentIndex, VideoClassifier, load_moments
from xclip.inference.index import check_index_model
from xclip.inference.moments import (
    MAX_TOP_K,
    Moment,
    check_moment_filters,
    clip_vector,
    nearest_moments,
    query_vector,
)
from xclip.inference.vector_index import import_faiss

from .api_errors import RETRY_AFTER, ApiError, short
from .decode import Limits, open_checked, read_spans, server_processor
from .library_videos import LibraryVideos
from .thumbnails import Thumbnails
from .uploads import body_length, read_body

__all__ = ["MAX_QUERY_CHARS", "SearchView"]

MAX_QUERY_CHARS = 2000  # far more than the text encoder's 77 tokens; longer: 400 at once
MAX_GLOB_CHARS = 1000
MAX_PENDING = 64  # searches waiting or running at once; more get a 503
DEFAULT_TOP_K = 24
QUERY_CACHE = 256  # text query vectors kept

TopK = Annotated[int, Query(description=f"moments to return, 1 to {MAX_TOP_K}")]
Glob = Annotated[str | None, Query(description="only videos whose name matches, e.g. '*cats*'")]
Seconds = Annotated[float | None, Query(description="seconds")]


def _one_faiss_thread() -> None:
    # OpenMP's thread count is set per calling thread: this one, that runs every search. One
    # query split over threads waits in their barriers when the cores are busy (docs/search.md)
    import_faiss().omp_set_num_threads(1)


class SearchView:
    """The Search view (a :class:`~.page_views.PageView`) of the moments library ``library``
    (``index``: it loaded; default: loaded here) for the classifier's model. ``InputError``
    when the library cannot be read, is empty, or was embedded with other weights."""

    name = "search"

    def __init__(
        self, library: str | os.PathLike, clf: VideoClassifier, index: MomentIndex | None = None
    ) -> None:
        self.library = Path(library)
        self.index = index if index is not None else load_moments(self.library)
        check_index_model(self.index.model, clf.model, what=f"the moments library {library}")
        if len(self.index) == 0 or self.index.vectors is None:
            raise InputError(f"the moments library {library} is empty (no windows)")
        identities = {}
        if any(self.library.glob("part-*.parquet")):
            from xclip_app.parquet_results import video_identities  # lazy: optional dependency

            identities = video_identities(self.library)
        self.videos = LibraryVideos(self.index.videos, self.index.locations, identities)
        self.clf = clf
        self.searcher = ThreadPoolExecutor(1, "xclip-search", initializer=_one_faiss_thread)
        self.vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self.pending = 0
        self.router = APIRouter()
        self._routes()

    # -- PageView -----------------------------------------------------------------------------
    def attach(self, service: Any) -> None:
        self.service = service
        base = service.limits
        self.limits = Limits(base.timeout, base.max_pixels, self.videos.root)
        self.thumbnails = Thumbnails(self.clf, service.decoder, self.limits)
        views = self.index.settings
        # an example clip is read as the library's windows were: with their views
        self.processor = server_processor(self.clf, service.limits).replace(
            num_clips=int(views.get("num_clips", 1)), num_crops=int(views.get("num_crops", 1))
        )

    def info(self) -> dict[str, Any]:
        s = self.index.settings
        return {"library": self.library.name, "videos": len(self.videos),
                "windows": len(self.index), "window": s.get("window"), "stride": s.get("stride"),
                "top_k": DEFAULT_TOP_K, "max_top_k": MAX_TOP_K,
                "max_query_chars": MAX_QUERY_CHARS}  # fmt: skip

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.searcher.shutdown(wait=False, cancel_futures=True)

    # -- searching ----------------------------------------------------------------------------
    def _filters(self, top_k: int, glob: str | None, lo: float | None, hi: float | None):
        try:
            check_moment_filters(top_k, lo, hi)
        except InputError as e:
            raise ApiError(400, str(e).replace("top_k", "top_k (how many)")) from None
        if glob is not None and len(glob) > MAX_GLOB_CHARS:
            raise ApiError(400, f"the path pattern is {len(glob)} characters; at most "
                                f"{MAX_GLOB_CHARS}")  # fmt: skip
        lo, hi = (None if v is None else v + 0.0 for v in (lo, hi))  # (-0.0 is 0)
        return {"top_k": top_k, "path": glob or None, "min_duration": lo, "max_duration": hi}

    async def _text_vector(self, text: str) -> np.ndarray:
        vec = self.vectors.get(text)
        if vec is None:
            try:
                vec = await self.service.batcher.call(query_vector, self.clf.model, text)
            except InputError as e:
                raise ApiError(400, str(e)) from None
            self.vectors[text] = vec
            while len(self.vectors) > QUERY_CACHE:
                self.vectors.popitem(last=False)
        self.vectors.move_to_end(text)
        return vec

    async def _clip_vector(self, request: Request, name: str) -> np.ndarray:
        svc = self.service
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if not (ctype.startswith("video/") or ctype == "application/octet-stream"):
            raise ApiError(415, f"Content-Type {short(ctype, 80) or '(none)'!r} is not a video: "
                                f"POST the clip's bytes with Content-Type video/*")  # fmt: skip
        n = body_length(request, svc.config.max_upload_bytes, "example clip")
        with svc.uploads.hold(n):
            body = await read_body(request, n, "example clip", svc.config.body_timeout)
            reader = await svc.decoder.run(open_checked, self.clf, body, name, svc.limits)
            try:
                (prepared,) = await svc.decoder.run(
                    read_spans, self.clf, reader, None, name=name, limits=svc.limits,
                    processor=self.processor,
                )  # fmt: skip
            finally:
                reader.close()
        return await svc.batcher.call(clip_vector, self.clf, prepared.clips)

    def _find(self, vec: np.ndarray, f: dict[str, Any]) -> list[Moment]:
        """The search itself (on the search thread: the glob over every name, then FAISS)."""
        videos = None
        if f["path"] is not None:
            names = self.videos.names
            videos = np.array([fnmatch.fnmatchcase(n, f["path"]) for n in names], dtype=bool)
        return nearest_moments(self.index, vec, top_k=f["top_k"], videos=videos,
                               min_duration=f["min_duration"], max_duration=f["max_duration"])  # fmt: skip

    async def _answer(self, what: dict[str, Any], f: dict[str, Any], vector) -> dict[str, Any]:
        """Moments for the query vector ``vector()`` (awaitable), at most :data:`MAX_PENDING`
        searches at once."""
        if self.pending >= MAX_PENDING:
            raise ApiError(503, f"{self.pending} searches are waiting; try again in a few "
                                f"seconds", {"Retry-After": RETRY_AFTER})  # fmt: skip
        self.pending += 1  # (one event loop: no lock needed)
        try:
            t0 = time.perf_counter()
            vec = await vector()
            t1 = time.perf_counter()
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(self.searcher, self._find, vec, f)
            t2 = time.perf_counter()
        finally:
            self.pending -= 1
        return {**what, "filters": f, "moments": [self._moment(m) for m in found],
                "timings": {"query": round(t1 - t0, 4), "search": round(t2 - t1, 4)}}  # fmt: skip

    def _moment(self, m: Moment) -> dict[str, Any]:
        vid = self._ids[m.path]
        middle = round((m.start + m.end) / 2, 1)
        return {"rank": m.rank, "path": self.videos.names[vid], "video_id": vid,
                "start": round(m.start, 3), "end": round(m.end, 3), "score": round(m.score, 6),
                "windows": m.windows, "thumbnail": f"/api/search/thumbnails/{vid}?t={middle}",
                "video": f"/api/search/videos/{vid}"}  # fmt: skip

    @functools.cached_property
    def _ids(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.index.videos)}

    # -- routes -------------------------------------------------------------------------------
    def _routes(self) -> None:
        r = self.router

        @r.get("/api/search", summary="moments of the library for a text, best first")
        async def search(
            q: Annotated[str, Query(description="what happens, e.g. 'a dog catches a frisbee'")],
            top_k: TopK = DEFAULT_TOP_K, path: Glob = None,
            min_duration: Seconds = None, max_duration: Seconds = None,
        ) -> dict[str, Any]:  # fmt: skip
            if len(q) > MAX_QUERY_CHARS:
                raise ApiError(400, f"the query is {len(q)} characters; at most "
                                    f"{MAX_QUERY_CHARS} (the model reads 77 tokens)")  # fmt: skip
            f = self._filters(top_k, path, min_duration, max_duration)
            return await self._answer({"query": q}, f, lambda: self._text_vector(q))

        @r.post("/api/search/like", summary="moments that look like an uploaded clip",
                openapi_extra={"requestBody": {"required": True, "content": {"video/*": {
                    "schema": {"type": "string", "format": "binary"}}}}})  # fmt: skip
        async def like(
            request: Request, top_k: TopK = DEFAULT_TOP_K, path: Glob = None,
            min_duration: Seconds = None, max_duration: Seconds = None,
            name: str | None = None,
        ) -> dict[str, Any]:  # fmt: skip
            f = self._filters(top_k, path, min_duration, max_duration)
            clip = os.path.basename(name or "clip")[:200] or "clip"
            return await self._answer({"like": clip}, f, lambda: self._clip_vector(request, clip))

        @r.get("/api/search/thumbnails/{video_id}", summary="a frame of a library video (JPEG)",
               response_class=Response)  # fmt: skip
        async def thumbnail(
            video_id: str, t: Annotated[float, Query(description="seconds into the video")] = 0.0
        ) -> Response:
            vid = self.videos.number(video_id)
            if not (np.isfinite(t) and 0 <= t <= 1e7):
                raise ApiError(400, f"t must be seconds into the video (>= 0), got {t}")
            path = self.videos.file(vid)
            jpeg = await self.thumbnails.get(vid, path, self.videos.names[vid], t)
            return Response(jpeg, media_type="image/jpeg",
                            headers={"Cache-Control": "private, max-age=3600"})  # fmt: skip

        @r.get("/api/search/videos/{video_id}", summary="a library video (range requests)")
        async def video(video_id: str) -> FileResponse:
            vid = self.videos.number(video_id)
            return FileResponse(self.videos.file(vid), headers={"Cache-Control": "no-cache"})
