"""What every answer of the server other than 200 looks like: one-line JSON, never HTML.

``{"error": "...", "status": N}``. The same body is built two ways: by the app (a Starlette
response) and, for what goes wrong before the app sees a request (a malformed request line,
headers that never finish, a connection past the cap), as raw HTTP bytes by
:mod:`.protocol`. Messages never name a file by absolute path (:func:`redact_paths`).
"""

from __future__ import annotations

import json
import os
import re
from http import HTTPStatus
from pathlib import Path

__all__ = ["ApiError", "error_body", "raw_error", "redact_paths", "short"]

RETRY_AFTER = "5"  # seconds, for 503 answers

# an absolute path inside a message (POSIX or Windows); group 1 is its last component
_ABS_PATH = re.compile(r"""(?<![\w.:/\\])(?:/|[A-Za-z]:\\)(?:[^\s'"/\\]+[/\\])*([^\s'"/\\]+)""")


class ApiError(Exception):
    """An answer other than 200, with its one-line message (``headers``: extra headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = HTTPStatus(status)
        self.message = short(" ".join(message.split()), 500)
        self.headers = headers or {}


def short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact_paths(text: str, root: Path | None = None) -> str:
    """``text`` with paths inside ``root`` made relative to it and other absolute paths cut to
    their last component (exception texts name files; the client must not learn the layout)."""
    if root is not None:
        for r in {str(root.resolve()), str(root.absolute())}:
            text = text.replace(r + os.sep, "")
    return _ABS_PATH.sub(lambda m: m.group(1), text)


def error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": int(status)}).encode()


def raw_error(status: int, message: str, headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 answer, closing the connection: for errors outside any request cycle."""
    body = error_body(status, message)
    head = [
        f"HTTP/1.1 {int(status)} {HTTPStatus(status).phrase}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        "X-Content-Type-Options: nosniff",
        "Cache-Control: no-store",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
