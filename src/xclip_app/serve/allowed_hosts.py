"""Which ``Host`` headers the server answers (DNS-rebinding protection), on any address it binds.

A web page of another site can make the user's browser send requests to this server under a
name the attacker controls (DNS rebinding); the browser then sends that name in ``Host``. So
the server answers only names it knows: loopback names (``localhost``, ``*.localhost``), the
machine's own host name and the name given to ``--host`` when bound beyond loopback, and the
names given with ``--allow-host``. IP literals (``127.0.0.1``, ``[::1]``, ``192.168.1.5``) are
always accepted, as in Vite's dev server: rebinding needs a name, a page opened at an address
is already talking to that address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

__all__ = ["AllowedHosts", "host_name"]

LOOPBACK_NAMES = ("localhost",)


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header, without port, lower case; ``None`` when malformed.

    ``"[::1]:8000"`` -> ``"::1"``, ``"Example.COM.:80"`` -> ``"example.com"``.
    """
    host = header.strip()
    if host.startswith("["):  # an IPv6 address, in brackets
        end = host.find("]")
        if end < 0:
            return None
        name, rest = host[1:end], host[end + 1 :]
        if rest and not rest.startswith(":") or ":" not in name or not _is_ip(name):
            return None
        port = rest[1:]
    else:
        name, _, port = host.partition(":")
        if ":" in port:  # an IPv6 address without brackets is not a valid Host
            return None
    if port and not (port.isascii() and port.isdigit()):
        return None
    name = name.lower().rstrip(".")
    return name or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return True


class AllowedHosts:
    """The ``Host`` names one server answers to (see the module docstring).

    Args:
        bind: the address the server listens on (``--host``).
        extra: names given with ``--allow-host`` (a leading dot allows every subdomain:
            ``.example.com``).
        loopback: whether ``bind`` is a loopback address (then the machine's name is not added).
    """

    def __init__(self, bind: str, extra: Iterable[str] = (), loopback: bool = True) -> None:
        names = set(LOOPBACK_NAMES)
        if not loopback:
            names.add(socket.gethostname().lower())
            names.add(socket.gethostname().lower().split(".")[0])
        bind_name = bind.strip("[]").lower()
        if bind_name and not _is_ip(bind_name):
            names.add(bind_name.rstrip("."))
        self.suffixes = {".localhost"}
        for e in extra:
            e = e.strip().lower().rstrip(".")
            if e.startswith("."):
                self.suffixes.add(e)
            elif e:
                names.add(e.strip("[]"))
        self.names = frozenset(names)

    def allows(self, header: str | None) -> bool:
        """Whether a request carrying ``Host: header`` may be answered."""
        name = host_name(header or "")
        if name is None:
            return False
        return _is_ip(name) or name in self.names or any(name.endswith(s) for s in self.suffixes)
