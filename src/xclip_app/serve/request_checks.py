"""The checks every request passes before a route sees it, as one ASGI middleware.

* ``Host`` must name this server (:class:`~.allowed_hosts.AllowedHosts`: DNS-rebinding
  protection). Starlette's ``TrustedHostMiddleware`` is not used: it takes a fixed list of
  names (a server bound to ``0.0.0.0`` is reached at any of the machine's addresses, which the
  allow-list accepts as IP literals) and answers 400 in plain text;
* HTTP/1.0 or 1.1 only (h11 parses any ``HTTP/d.d``), at most :data:`MAX_HEADERS` headers,
  methods GET, HEAD and POST (others: 405 with ``Allow``);
* every answer carries ``nosniff``, ``no-referrer`` and ``no-store``; the page's HTML also a
  Content-Security-Policy without inline script and ``X-Frame-Options: DENY``. No CORS headers,
  so other web sites cannot read the answers.
"""

from __future__ import annotations

from typing import Any

from .allowed_hosts import AllowedHosts, host_name
from .api_errors import error_body, short

__all__ = ["CSP", "RequestChecks"]

MAX_HEADERS = 100
MAX_HEAD_BYTES = 64 * 1024  # the request line and headers together (also h11's limit)
METHODS = ("GET", "HEAD", "POST")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class RequestChecks:
    """ASGI middleware: refuse what no route should see, add the security headers."""

    def __init__(self, app: Any, allowed_hosts: AllowedHosts, url: Any) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.url = url  # () -> the server's address, for the message of a refused Host

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            status, message, extra = refusal
            body = error_body(status, message)
            headers = [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # (a body it may carry is not read)
                (b"cache-control", b"no-store"),
                *_ALWAYS,
                *extra,
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in _ALWAYS if h[0] not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                ctype = dict(headers).get(b"content-type", b"")
                if ctype.startswith(b"text/html") and scope["path"] in ("/", "/index.html"):
                    headers += [
                        (b"content-security-policy", CSP.encode()),
                        (b"x-frame-options", b"DENY"),
                    ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: dict) -> tuple[int, str, list] | None:
        if scope.get("http_version") not in ("1.0", "1.1"):
            return (
                400,
                f"HTTP/{short(str(scope.get('http_version')), 10)} is not supported; send HTTP/1.1",
                [],
            )
        headers = scope["headers"]
        if len(headers) > MAX_HEADERS:
            return 431, f"{len(headers)} headers; at most {MAX_HEADERS} are accepted", []
        # (h11 stops buffering a head past this size, but parses one that arrives whole)
        size = len(scope["raw_path"]) + len(scope["query_string"])
        size += sum(len(k) + len(v) + 4 for k, v in headers)
        if size > MAX_HEAD_BYTES:
            return 431, "the request line or headers are too long", []
        hosts = [v for k, v in headers if k == b"host"]
        host = hosts[0].decode("latin-1") if len(hosts) == 1 else ""
        if not self.allowed_hosts.allows(host):
            name = host_name(host)
            fix = f", or start the server with --allow-host {short(name, 100)}" if name else ""
            return (
                403,
                f"Host {short(host, 100)!r} is not allowed; open the page at {self.url()}{fix}",
                [],
            )
        method = scope["method"]
        if method not in METHODS:
            return (
                405,
                f"method {short(method, 40)!r} is not supported; use GET or POST",
                [(b"allow", b"GET, HEAD, POST")],
            )
        return None
