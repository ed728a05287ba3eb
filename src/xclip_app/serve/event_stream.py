"""Server-sent events to many clients at once: one bounded queue per client, a cap on clients,
keep-alive comments, and an end when the server stops.

:class:`EventHub` lives on the event loop. :meth:`EventHub.publish` (called on the loop; a thread
hands its events over with ``loop.call_soon_threadsafe``) encodes an event once and appends it
to every client's queue. A queue holds at most ``queue_size`` events: a client that reads slower
than events come loses its oldest *droppable* events (windows, status ticks), never blocks the
publisher and never grows memory; the number it lost is sent to it, as a ``lost`` event, before
its next one. A client that stops reading altogether fills its socket, and the connection's send
deadline (:mod:`.protocol`) drops it. At most ``max_clients`` streams are open: one more is
answered 503 (JSON). :meth:`EventHub.close` ends every stream (the server stops: uvicorn waits
for open answers, so they must end).

The answer is Starlette's ``StreamingResponse`` (``text/event-stream``): it also ends the stream
when the client disconnects. ``sse-starlette`` would add its own shutdown detection, which hooks
uvicorn's signal handler and so misses a server stopped by ``XCLIPServer.shutdown()``; the queue,
the cap and the drop counting are this module's either way.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import StreamingResponse

from .api_errors import RETRY_AFTER, ApiError

__all__ = ["EventHub", "encode_event"]


def encode_event(kind: str, data: Any) -> bytes:
    """One server-sent event: ``event: kind`` and its JSON ``data`` (one line)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return f"event: {kind}\ndata: {text}\n\n".encode()


@dataclass(eq=False)  # (a client is itself, in a set)
class _Client:
    queue: deque[tuple[bool, bytes]] = field(default_factory=deque)  # (droppable, bytes)
    lost: int = 0  # droppable events dropped since the client was last told
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class EventHub:
    """The open event streams (see the module doc). ``droppable``: the event kinds a slow client
    may lose; ``keepalive``: seconds between comments on a quiet stream; ``retry_ms``: how soon
    a browser reconnects a dropped stream."""

    def __init__(
        self,
        *,
        max_clients: int = 32,
        queue_size: int = 64,
        keepalive: float = 15.0,
        retry_ms: int = 2000,
        droppable: Iterable[str] = (),
    ) -> None:
        if max_clients < 1 or queue_size < 2:
            raise ValueError("max_clients must be >= 1 and queue_size >= 2")
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.keepalive = keepalive
        self.retry_ms = retry_ms
        self.droppable = frozenset(droppable)
        self.dropped = 0  # events dropped for slow clients, all clients together
        self.refused = 0  # streams refused at the cap
        self._clients: set[_Client] = set()
        self._closed = False

    @property
    def clients(self) -> int:
        return len(self._clients)

    def queued(self) -> int:
        """Events waiting in all the clients' queues (bounded by clients x queue_size)."""
        return sum(len(c.queue) for c in self._clients)

    def publish(self, kind: str, data: Any) -> None:
        """Send an event to every open stream (on the event loop)."""
        if not self._clients:
            return
        item = (kind in self.droppable, encode_event(kind, data))
        for c in self._clients:
            if len(c.queue) >= self.queue_size:
                self._drop_oldest(c)
            c.queue.append(item)
            c.wake.set()

    def _drop_oldest(self, c: _Client) -> None:
        for i, (droppable, _) in enumerate(c.queue):
            if droppable:
                del c.queue[i]
                break
        else:  # (only events that matter queued: the oldest goes all the same)
            c.queue.popleft()
        c.lost += 1
        self.dropped += 1

    def close(self) -> None:
        """End every stream (the server stops); streams opened later end at once."""
        self._closed = True
        for c in self._clients:
            c.wake.set()

    def response(self, first: list[tuple[str, Any]]) -> StreamingResponse:
        """A stream that starts with the events ``first`` (a snapshot, built on the loop now, so
        nothing published after it is missed) and goes on with every published one. 503 at the
        cap (raised here, before the answer starts)."""
        if len(self._clients) >= self.max_clients:
            self.refused += 1
            raise ApiError(
                503,
                f"{self.max_clients} event streams are open, the most this server keeps; try "
                "again in a few seconds",
                {"Retry-After": RETRY_AFTER},
            )
        c = _Client()
        self._clients.add(c)
        head = f"retry: {self.retry_ms}\n\n".encode() + b"".join(
            encode_event(k, d) for k, d in first
        )
        return _Stream(self._stream(c, head), lambda: self._clients.discard(c))

    async def _stream(self, c: _Client, head: bytes) -> AsyncIterator[bytes]:
        yield head
        while not self._closed:
            if not c.queue:
                c.wake.clear()
                try:
                    await asyncio.wait_for(c.wake.wait(), self.keepalive)
                except (TimeoutError, asyncio.TimeoutError):
                    yield b": keep-alive\n\n"
                continue
            chunks = []
            if c.lost:
                chunks.append(encode_event("lost", {"events": c.lost}))
                c.lost = 0
            while c.queue:
                chunks.append(c.queue.popleft()[1])
            yield b"".join(chunks)


class _Stream(StreamingResponse):
    """``text/event-stream`` whose client is let go however the answer ends (its generator may
    never start when the client leaves at once)."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
