"""Local web page + JSON API for X-CLIP inference (``xclip-video serve``); standard library only."""

from .server import ServeConfig, XCLIPServer, make_server

__all__ = ["ServeConfig", "XCLIPServer", "make_server"]
