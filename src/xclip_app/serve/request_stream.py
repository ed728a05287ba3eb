"""The bytes a client sends on one connection, read against a deadline (no slow-loris).

A socket timeout bounds one ``recv``, so a client that sends a byte every few seconds never trips
it and holds a server thread for as long as it likes. :class:`RequestStream` replaces the
handler's ``rfile``: every read shares one deadline, set per request for the request line and
headers and again for the body, and a read that would pass it raises :class:`RequestTimeout`.
"""

from __future__ import annotations

import socket
import time

__all__ = ["RequestStream", "RequestTimeout"]

CHUNK = 64 * 1024


class RequestTimeout(TimeoutError):
    """The client did not send the request (or its body) before the deadline."""


class RequestStream:
    """``readline``/``read`` over a connected socket, all bounded by ``deadline``.

    ``deadline`` is a :func:`time.monotonic` time (``None``: no limit); ``received`` counts the
    bytes that arrived since it was last set and ``timed_out`` says a read ran out of time.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self.deadline: float | None = None
        self.received = 0
        self.timed_out = False

    def set_deadline(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.received = 0
        self.timed_out = False

    def _fill(self) -> bool:
        """One ``recv`` into the buffer; ``False`` at the end of the stream."""
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.timed_out = True
                raise RequestTimeout("the client was too slow")
            self._sock.settimeout(left)
        try:
            data = self._sock.recv(CHUNK)
        except TimeoutError:
            self.timed_out = True
            raise RequestTimeout("the client was too slow") from None
        if not data:
            return False
        self.received += len(data)
        self._buf += data
        return True

    def _take(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def readline(self, limit: int = -1) -> bytes:
        """Up to and including the next ``\\n``, at most ``limit`` bytes, less at the end."""
        start = 0
        while True:
            end = len(self._buf) if limit < 0 else min(len(self._buf), limit)
            i = self._buf.find(b"\n", start, end)
            if i >= 0:
                return self._take(i + 1)
            if limit >= 0 and len(self._buf) >= limit:
                return self._take(limit)
            start = end
            if not self._fill():
                return self._take(len(self._buf))

    def read(self, n: int = -1) -> bytes:
        """``n`` bytes (all until the end for ``n < 0``), less only at the end of the stream."""
        if n < 0:
            while self._fill():
                pass
            return self._take(len(self._buf))
        if len(self._buf) >= n:
            return self._take(n)
        # a large body: collect chunks, join once (one copy, not one per chunk)
        parts = [self._take(len(self._buf))]
        have = len(parts[0])
        while have < n and self._fill():
            parts.append(self._take(min(len(self._buf), n - have)))
            have += len(parts[-1])
        return b"".join(parts)

    def close(self) -> None:
        self._buf.clear()
