"""The optional views of the page beyond Classify and Timeline (Search with ``--index``, Live with
``--live``): each brings its own API routes, its entry in ``/api/info`` and its lifetime.

A view is added by ``xclip-video serve`` when its option is given; the :class:`~.app.Service`
attaches itself to it, :func:`~.app.create_app` mounts its router, merges its
:meth:`PageView.info` under its :attr:`PageView.name` key of ``/api/info`` (the page shows a
view's tab only when that key is there) and starts and stops it with the app. A view that keeps
answers open (the Live view's event stream) may also have a ``closing()`` method, called on the
event loop as soon as the server begins to stop: uvicorn waits for open answers before the
lifespan ends, so they must end then.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter

__all__ = ["PageView"]


@runtime_checkable
class PageView(Protocol):
    """What :func:`~.app.create_app` needs of a view."""

    name: str  # its key in /api/info and its page's name ("search", "live")
    router: APIRouter  # its routes, under /api/<name>...

    def attach(self, service: Any) -> None:
        """Called once by the :class:`~.app.Service` that serves the view: the view uses its
        batcher (the model thread), decode pool, upload memory and limits."""
        ...

    def info(self) -> dict[str, Any]:
        """What the page needs to draw the view (JSON)."""
        ...

    async def start(self) -> None:
        """Called once the app's event loop runs (before the first request)."""
        ...

    async def stop(self) -> None:
        """Called when the server stops; must not raise."""
        ...
