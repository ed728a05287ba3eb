"""uvicorn's HTTP/1.1 connection (h11) with the three defences it leaves to the application.

uvicorn bounds what it reads (``h11_max_incomplete_event_size`` for the request line and
headers) and closes idle keep-alive connections (``timeout_keep_alive``), but:

* it has no deadline for the request line and headers: a client that sends one header byte
  every few seconds (slow loris), or connects and sends nothing, holds its connection forever;
* its ``limit_concurrency`` answers 503 only once a whole request has arrived, so connections
  that never finish one are never refused; and it answers in plain text, as it does a malformed
  request (400 ``Invalid HTTP request received.``);
* an answer to a client that never reads it waits forever.

:class:`GuardedH11Protocol` adds exactly those: a deadline from the first moment a request is
awaited until its headers are parsed (408, or a silent close when nothing came), a cap on open
connections checked when one is accepted (503 with ``Retry-After``, then closed, costing
nothing more), JSON for what h11 refuses (with h11's own status: 400, or 431 for a request line
or headers over the size limit), and a deadline on a stalled write. The body's deadline and
everything after the headers belong to the app (:mod:`.uploads`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .api_errors import RETRY_AFTER, raw_error

__all__ = ["ConnectionLimits", "GuardedH11Protocol"]

logger = logging.getLogger(__name__)


@dataclass
class ConnectionLimits:
    """Per server: ``max_connections`` open at once; ``request_timeout`` seconds for a request
    line and headers (from the connection's start, or the end of the previous answer);
    ``send_timeout`` seconds a stalled answer may wait for its client to read."""

    max_connections: int = 512
    request_timeout: float = 10.0
    send_timeout: float = 30.0
    refused: int = 0  # connections refused since last logged
    refused_logged: float = -1e9


class GuardedH11Protocol(H11Protocol):
    """One connection (see the module docstring). Built by uvicorn with ``limits=`` bound
    (``functools.partial``), as ``uvicorn.Config(http=...)``."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._header_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._received = 0  # bytes of the request being awaited
        self._parse_error: h11.RemoteProtocolError | None = None
        next_event = self.conn.next_event

        def remember_errors() -> Any:  # (uvicorn catches h11's error and drops its status hint)
            try:
                return next_event()
            except h11.RemoteProtocolError as e:
                self._parse_error = e
                raise

        self.conn.next_event = remember_errors  # type: ignore[method-assign]

    # -- the connection cap -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self.limits
        if len(self.connections) > limits.max_connections:
            limits.refused += 1
            now = time.monotonic()
            if now - limits.refused_logged > 10:  # (a flood of connections is not of logs)
                logger.warning(
                    "refused %d connection(s): %d are open (--max-connections)",
                    limits.refused, limits.max_connections,
                )  # fmt: skip
                limits.refused, limits.refused_logged = 0, now
            self._refuse(
                503,
                f"the server is busy: {limits.max_connections} connections are open (its "
                f"--max-connections); try again in a few seconds",
                {"Retry-After": RETRY_AFTER},
            )
            return
        self._watch_headers()

    def _refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        if not self.transport.is_closing():
            self.transport.write(raw_error(status, message, headers))
            self.transport.close()

    # -- the deadline of the request line and headers ------------------------------------------
    def _awaiting_request(self) -> bool:
        return self.conn.their_state is h11.IDLE and (
            self.cycle is None or self.cycle.response_complete
        )

    def _watch_headers(self) -> None:
        """Arm the deadline when a request is awaited, disarm it once its headers are parsed."""
        if self.transport.is_closing():
            self._cancel_timers()
        elif self._awaiting_request():
            if self._header_timer is None:
                self._received = 0
                self._header_timer = self.loop.call_later(
                    self.limits.request_timeout, self._headers_late
                )
        elif self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._received:  # part of a request came: say why it is refused
            self._refuse(
                408,
                f"the request line and headers did not arrive within "
                f"{self.limits.request_timeout:g} s",
            )
        elif not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is not None:
            self._received += len(data)
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()

    def send_400_response(self, msg: str) -> None:
        """What h11 refused, as JSON with h11's status (400; 431 for an oversize head)."""
        err = self._parse_error
        status = getattr(err, "error_status_hint", 400) if err is not None else 400
        status = status if status in (400, 414, 431) else 400
        reason = str(err) if err is not None and str(err) else msg
        if status == 431:
            reason = "the request line or headers are too long"
        self._refuse(status, f"malformed request: {reason}")

    # -- an answer nobody reads ----------------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.limits.send_timeout, self._send_late)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _send_late(self) -> None:
        self._send_timer = None
        logger.debug("a client did not read its answer for %g s", self.limits.send_timeout)
        self.transport.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._send_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._send_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)
