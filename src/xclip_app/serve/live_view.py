"""The Live view of the page (``xclip-video serve --live SOURCE``): a :class:`xclip.live.Watcher`
on the one source given on the command line, its events to the browsers, its labels changed
from the page.

Routes::

    GET  /api/live            the state: source, its status, labels, stats, recent windows, segments
    GET  /api/live/events     server-sent events: a snapshot (the state), then window, segment,
                              labels, source and status events (status twice a second: the
                              source's status, the newest frame's time, windows, skipped, latency)
    GET  /api/live/frame.jpg  the newest frame, a JPEG (encoded once per frame)
    POST /api/live/labels     {"labels": [...]}: the labels from the next window on

The source is fixed when the server starts: no request names what to open. Its address is shown
without user name, password or query. The watcher runs in its own threads (reader, model) with
its own :class:`~xclip.inference.VideoClassifier` over the server's model weights (a classifier's
text cache belongs to one thread; the server's is the batcher's); its events reach the event loop
through ``call_soon_threadsafe`` and the clients through :class:`~.event_stream.EventHub`.

A live source (network, device) that is lost for ``--timeout`` is opened again after 5 s,
doubling to 60 s (each attempt a new *run*: the stream's clock starts again at 0, the page
clears its plot); a file or a pipe that ends stays ended. The server goes on either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import math
import statistics
import threading
import time
from collections import OrderedDict, deque
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from PIL import Image

from xclip.inference import VideoClassifier
from xclip.live import (
    LabelsChanged,
    LiveSourceError,
    Segment,
    SourceEvent,
    Watcher,
    WindowResult,
    source_kind,
)

from .api_errors import ApiError, redact_paths
from .event_stream import EventHub
from .label_checks import MAX_LABELS, request_labels
from .uploads import body_length, read_body

__all__ = ["LiveView", "shown_source"]

logger = logging.getLogger(__name__)

LABELS_BODY_BYTES = 64 * 1024
MAX_SEGMENTS = 200  # the segments a state keeps (the newest)
STATUS_EVERY = 0.5  # seconds between status events
RESTART = (5.0, 60.0)  # seconds before opening a lost live source again: doubling, capped


def shown_source(source: str) -> str:
    """What the page may see of the source: a URL without user, password, query or fragment
    (an RTSP camera's credentials), a file by its name, a device as it is."""
    if source == "-":
        return "stdin"
    if source_kind(source) == "device":
        return source
    if "://" in source:
        u = urlsplit(source)
        host = u.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return f"{u.scheme}://{host}{f':{u.port}' if u.port else ''}{u.path}"
    return redact_paths(source)


class LiveView:
    """The ``live`` :class:`~.page_views.PageView` (see the module doc). ``settings``: the
    :class:`~xclip.live.Watcher`'s keyword arguments (:func:`xclip_app.live_args.watcher_settings`);
    ``history``: seconds of windows a state keeps; ``max_clients``: event streams at once."""

    name = "live"

    def __init__(
        self,
        classifier: VideoClassifier,
        source: str,
        settings: dict[str, Any],
        *,
        history: float = 120.0,
        max_clients: int = 32,
        body_timeout: float = 30.0,
    ) -> None:
        self.classifier = classifier
        self.source = source
        self.settings = dict(settings)
        self.live = source_kind(source, settings.get("input_format")) in ("network", "device")
        self.history = history
        self.body_timeout = body_timeout
        self.hub = EventHub(max_clients=max_clients, droppable=("window", "status"))
        self.labels: tuple[str, ...] = tuple(classifier.labels)
        self.run = 0  # watcher runs: a live source lost for good is opened again
        self.state, self.reason = "connecting", None
        self.retry_at: float | None = None
        stride = float(settings.get("stride", 1.0))
        self.windows: deque[dict[str, Any]] = deque(maxlen=min(2000, math.ceil(history / stride)))
        self.segments: OrderedDict[tuple[str, float], dict[str, Any]] = OrderedDict()
        self.watcher: Watcher | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._restart: asyncio.TimerHandle | None = None
        self._failures = 0  # runs in a row that ended without a window
        self._stopping = False
        self._jpeg: tuple[tuple[int, float], bytes] | None = None
        self._jpeg_lock = asyncio.Lock()
        self.router = self._routes()

    # -- PageView ---------------------------------------------------------------------------------
    def attach(self, service: Any) -> None:
        """Nothing to take: the view runs its own watcher, classifier and threads."""

    def info(self) -> dict[str, Any]:
        s = self.settings
        return {
            "source": shown_source(self.source),
            "window": s.get("window"), "stride": s.get("stride"),
            "threshold": s.get("threshold"), "min_duration": s.get("min_duration"),
            "history": self.history, "max_labels": MAX_LABELS, "labels": list(self.labels),
        }  # fmt: skip

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._start_watcher()
        self._tasks.append(asyncio.create_task(self._status_ticks(), name="xclip-live-status"))

    def closing(self) -> None:
        """The server begins to stop: end the event streams now."""
        self._stopping = True
        self.hub.close()

    async def stop(self) -> None:
        self.closing()
        if self._restart is not None:
            self._restart.cancel()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.watcher is not None:
            await asyncio.to_thread(self._stop_watcher)

    # -- the watcher (its threads) ----------------------------------------------------------------
    def _start_watcher(self) -> None:
        self._restart, self.retry_at = None, None
        if self._stopping:
            return
        self.run += 1
        self.windows.clear()
        self.segments.clear()
        self.state, self.reason = "connecting", None
        run = self.run
        w = Watcher(self.classifier, self.source, **self.settings)
        if self.labels != w.labels:
            w.set_labels(self.labels)
        w.subscribe(lambda event: self._to_loop(self._on_event, run, event))
        self.watcher = w
        self._thread = threading.Thread(
            target=self._watch, args=(w, run), name="xclip-live-view", daemon=True
        )
        self._thread.start()
        if run > 1:
            self.hub.publish("snapshot", self.snapshot())

    def _watch(self, w: Watcher, run: int) -> None:
        try:
            stats = w.run()
            error = stats.error if stats.ended in ("source lost", "failed") else None
        except LiveSourceError as e:  # no frame at all: shown on the page
            error = str(e).removeprefix(f"{self.source}: ")
        except Exception as e:  # a bug: in the log, and said on the page
            logger.exception("%s: the live view's watcher failed", shown_source(self.source))
            error = f"the watcher failed: {type(e).__name__}"
        self._to_loop(self._ended, run, error)

    def _stop_watcher(self) -> None:
        if self.watcher is not None:
            self.watcher.stop(wait=0)
        if self._thread is not None:
            self._thread.join(5.0)

    def _to_loop(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # (the loop may close meanwhile: the server is gone)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    # -- events (on the event loop) ---------------------------------------------------------------
    def _on_event(self, run: int, event: Any) -> None:
        if run != self.run:
            return
        if isinstance(event, WindowResult):
            row = {
                "run": run, "index": event.index, "start": round(event.start, 3),
                "end": round(event.end, 3), "labels": list(event.labels),
                "probs": [round(p, 5) for p in event.probs], "latency": round(event.latency, 4),
                "skipped": event.skipped, "wall": round(event.wall, 4),
            }  # fmt: skip
            self.windows.append(row)
            self._failures = 0
            if self.state != "playing":
                self.state, self.reason = "playing", None
            self.hub.publish("window", row)
        elif isinstance(event, Segment):
            row = {"run": run, **event.as_row()}
            key = (event.label, row["start"])
            self.segments[key] = row
            self.segments.move_to_end(key)
            while len(self.segments) > MAX_SEGMENTS:
                self.segments.popitem(last=False)
            self.hub.publish("segment", row)
        elif isinstance(event, LabelsChanged):
            self.labels = event.labels
            self.hub.publish("labels", {"run": run, **event.as_row()})
        elif isinstance(event, SourceEvent):
            self.state, self.reason = {
                "connected": ("playing", None), "disconnected": ("reconnecting", event.reason),
                "reconnecting": ("reconnecting", event.reason),
                "ended": ("ended" if event.reason is None else "lost", event.reason),
            }.get(event.kind, (self.state, self.reason))  # fmt: skip
            row = {"run": run, **event.as_row(), "source": shown_source(self.source)}
            self.hub.publish("source", {**row, "state": self.state})

    def _ended(self, run: int, error: str | None) -> None:
        if run != self.run:
            return
        self.state, self.reason = ("lost", error) if error else ("ended", None)
        if self._stopping:
            return
        if error and self.live:
            delay = min(RESTART[0] * 2**self._failures, RESTART[1])
            self._failures += 1
            self.retry_at = time.time() + delay
            assert self._loop is not None
            self._restart = self._loop.call_later(delay, self._start_watcher)
            logger.warning(
                "%s: %s; opening it again in %g s", shown_source(self.source), error, delay
            )
        self.hub.publish("status", self.status())

    async def _status_ticks(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY)
            self.hub.publish("status", self.status())

    # -- what the routes answer -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The source's state in a few numbers (the page's status line)."""
        w = self.watcher
        frame = w.latest_frame() if w is not None else None
        now = time.time()
        recent = [r["latency"] for r in self.windows if r["wall"] > now - 60]
        stats = w.stats if w is not None else None
        return {
            "run": self.run, "state": self.state, "reason": self.reason,
            "retry_in": None if self.retry_at is None else max(0.0, round(self.retry_at - now, 1)),
            "frame": None if frame is None else round(frame.time, 3),
            "windows": stats.windows if stats else 0, "skipped": stats.skipped if stats else 0,
            "latency_p50": round(statistics.median(recent), 4) if recent else None,
            "reconnects": w.reader.reconnects if w is not None else 0,
            "corrupt_packets": w.reader.corrupt_packets if w is not None else 0,
            "clients": self.hub.clients, "dropped_events": self.hub.dropped,
        }  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        """The whole state: what a page needs to draw the view from scratch."""
        return {
            **self.info(), "status": self.status(), "windows": list(self.windows),
            "segments": list(self.segments.values()),
        }  # fmt: skip

    async def frame_jpeg(self) -> tuple[bytes, float]:
        w = self.watcher
        frame = w.latest_frame() if w is not None else None
        if frame is None:
            raise ApiError(404, "no frame yet: the source has not sent one")
        key = (self.run, frame.time)
        async with self._jpeg_lock:
            if self._jpeg is None or self._jpeg[0] != key:
                self._jpeg = (key, await asyncio.to_thread(_jpeg, frame.image))
            return self._jpeg[1], frame.time

    async def new_labels(self, request: Request) -> dict[str, Any]:
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, 'send the labels as application/json: {"labels": ["...", ...]}')
        n = body_length(request, LABELS_BODY_BYTES, "labels request")
        body = await read_body(request, n, "labels request", self.body_timeout)
        try:
            req = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, f"the body is not valid JSON: {e}") from None
        except RecursionError:
            raise ApiError(400, "the JSON body is nested too deeply") from None
        if not isinstance(req, dict) or "labels" not in req:
            raise ApiError(400, 'the body must be {"labels": ["...", ...]}')
        labels = request_labels(req["labels"])
        if self.watcher is not None and self._thread is not None and self._thread.is_alive():
            self.watcher.set_labels(labels)  # LabelsChanged comes with the next window
        else:  # (no stream now: the next run starts with them)
            self.labels = tuple(labels)
            self.hub.publish("labels", {"run": self.run, "type": "labels", "labels": labels,
                                        "from_window": None})  # fmt: skip
        return {"labels": labels}

    def _routes(self) -> APIRouter:
        r = APIRouter(prefix="/api/live", tags=["live"])

        @r.get("", summary="the live source: status, labels, recent windows and segments")
        async def state() -> dict[str, Any]:
            return self.snapshot()

        @r.get("/events", summary="server-sent events of the live source",
               response_class=Response, responses={200: {"content": {"text/event-stream": {}}}})  # fmt: skip
        async def events() -> Response:
            return self.hub.response([("snapshot", self.snapshot())])

        @r.get("/frame.jpg", summary="the newest frame of the live source (JPEG)",
               response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})  # fmt: skip
        async def frame() -> Response:
            data, t = await self.frame_jpeg()
            return Response(data, media_type="image/jpeg", headers={"X-Frame-Time": f"{t:.3f}"})

        @r.post("/labels", summary="the labels of the live source, from its next window on")
        async def labels(request: Request) -> dict[str, Any]:
            return await self.new_labels(request)

        return r


def _jpeg(image: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=80)
    return buf.getvalue()
