"""One HTTP request to a test server (``make_server`` on 127.0.0.1), its answer decoded: the
server tests of the page and of its views share it."""

from __future__ import annotations

import http.client
import json


def request(server, method, path, body=None, headers=None, timeout=60):
    """``(status, JSON or bytes, headers)`` of ``method path`` on ``server``."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        ctype = r.getheader("Content-Type", "")
        return r.status, (json.loads(data) if "json" in ctype else data), r.headers
    finally:
        conn.close()
