"""A running server: the app of :mod:`.app` on uvicorn, with :mod:`.protocol`'s connection.

:func:`make_server` binds the socket at once (so a taken port is an error of the command, and
``port=0`` knows its port) and returns an :class:`XCLIPServer`; ``serve_forever()`` runs uvicorn
on it (h11 with :class:`~.protocol.GuardedH11Protocol`, the asyncio loop) until ``shutdown()``.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import threading

import uvicorn

from xclip.inference import VideoClassifier

from .allowed_hosts import AllowedHosts
from .app import Service, create_app
from .config import ServeConfig
from .page_views import PageView
from .protocol import ConnectionLimits, GuardedH11Protocol
from .request_checks import MAX_HEAD_BYTES, RequestChecks

__all__ = ["XCLIPServer", "make_server"]

logger = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, telling the views first when it stops: uvicorn waits for every open
    answer before the app's lifespan ends, so an event stream must end on this call."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.service.closing()
        await super().shutdown(sockets)


class XCLIPServer:
    """One bound server (see the module docstring); ``url`` is where the page is."""

    def __init__(
        self,
        sock: socket.socket,
        classifier: VideoClassifier,
        config: ServeConfig,
        views: tuple[PageView, ...] = (),
    ) -> None:
        self.socket = sock
        self.classifier = classifier
        self.config = config
        self.service = Service(classifier, config, views)
        host = str(self.server_address[0])
        self.loopback = _is_loopback(host)
        self.allowed_hosts = AllowedHosts(host, config.allow_hosts, loopback=self.loopback)
        self.limits = ConnectionLimits(config.max_connections, config.request_timeout)
        app = RequestChecks(create_app(self.service), self.allowed_hosts, lambda: self.url)
        self.uvicorn = _Uvicorn(
            uvicorn.Config(
                app,
                http=functools.partial(GuardedH11Protocol, limits=self.limits),  # type: ignore[arg-type]
                loop="asyncio",
                lifespan="on",
                ws="none",
                timeout_keep_alive=max(1, round(config.request_timeout)),
                h11_max_incomplete_event_size=MAX_HEAD_BYTES,
                backlog=2048,
                log_config=None,
                access_log=False,
                server_header=False,
                date_header=False,
            ),
            self.service,
        )
        self._stopped = threading.Event()

    @property
    def server_address(self) -> tuple:
        return self.socket.getsockname()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"

    @property
    def connections(self) -> int:
        """Open connections (on the event loop; none has a thread)."""
        return len(self.uvicorn.server_state.connections)

    @property
    def held_bytes(self) -> int:
        """Request body bytes held in memory now, all requests together."""
        return self.service.uploads.held

    def serve_forever(self) -> None:
        try:
            self.uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop serving (from another thread) and wait for ``serve_forever`` to return."""
        self.uvicorn.should_exit = True
        self._stopped.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()


def make_server(
    classifier: VideoClassifier,
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    views: tuple[PageView, ...] = (),
) -> XCLIPServer:
    """A bound :class:`XCLIPServer` (call ``serve_forever()``; ``port=0`` picks a free port).
    ``OSError`` when the address cannot be bound; ``InputError`` for settings that conflict."""
    config.check()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # (--host ::1)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return XCLIPServer(sock, classifier, config, views)
