"""Local web page + JSON API for X-CLIP inference (``xclip-video serve``): a FastAPI app on
uvicorn with two views, Classify and Timeline (module map in ``docs/architecture.md``)."""

from .config import ServeConfig
from .server import XCLIPServer, make_server

__all__ = ["ServeConfig", "XCLIPServer", "make_server"]
