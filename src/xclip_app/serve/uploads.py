"""Request bodies: sized from ``Content-Length`` before a byte is read, counted against the upload
memory of all requests together, and read within a deadline that grows with their size.

Starlette streams the body (``Request.stream()``, chunk by chunk as uvicorn receives it); this
module keeps what is the server's own policy: how much, how long, how much at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from starlette.requests import ClientDisconnect, Request

from .api_errors import RETRY_AFTER, ApiError

__all__ = ["MIN_UPLOAD_RATE", "UploadMemory", "body_length", "read_body"]

MIN_UPLOAD_RATE = 256 * 1024  # bytes/s a body must average (after the grace of body_timeout)


class UploadMemory:
    """Bytes of request bodies held in memory, all requests together, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @contextlib.contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Count ``nbytes`` as held while the block runs; 503 when they would pass the limit."""
        if self.held + nbytes > self.limit:
            raise ApiError(
                503,
                f"the server already holds {self.held / 2**20:.1f} MiB of uploads (its "
                f"--max-upload-memory-mb is {self.limit / 2**20:.1f}); try again in a few seconds",
                {"Retry-After": RETRY_AFTER},
            )
        self.held += nbytes  # (one event loop: no lock needed)
        try:
            yield
        finally:
            self.held -= nbytes


def body_length(request: Request, limit: int, what: str) -> int:
    """The body's size from the headers (h11 has checked their syntax), against ``limit``."""
    if "transfer-encoding" in request.headers:
        raise ApiError(411, "send the body with a Content-Length, not chunked")
    length = request.headers.get("content-length")
    if length is None:
        raise ApiError(411, "a Content-Length header is required")
    n = int(length)
    if n > limit:
        raise ApiError(
            413,
            f"{what} is {n / 2**20:.1f} MiB; the limit is {limit / 2**20:.1f} MiB (start the "
            f"server with a larger --max-upload-mb, or cut the video)",
        )
    if n == 0:
        raise ApiError(400, f"the {what} is empty")
    return n


async def read_body(request: Request, n: int, what: str, grace: float) -> bytes:
    """The ``n`` bytes of the body, within ``grace`` seconds plus ``n`` at
    :data:`MIN_UPLOAD_RATE` (408 past that, however slowly the bytes trickle in)."""
    seconds = grace + n / MIN_UPLOAD_RATE
    parts: list[bytes] = []
    received = 0

    async def collect() -> None:
        nonlocal received
        async for chunk in request.stream():
            parts.append(chunk)
            received += len(chunk)

    try:
        await asyncio.wait_for(collect(), seconds)
    except (TimeoutError, asyncio.TimeoutError):
        raise ApiError(
            408, f"the {what} did not arrive within {seconds:.0f} s ({received} of {n} bytes)"
        ) from None
    except ClientDisconnect:
        raise ApiError(400, f"the {what} was cut short ({received} of {n} bytes)") from None
    return b"".join(parts)
