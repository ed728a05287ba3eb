"""The decode watchdog: a hard time limit that ends a process stuck inside a decoder.

Standard library only and no package-relative imports, so the file also loads on its own
(the test runs it by path in a subprocess).
"""

from __future__ import annotations

import contextlib
import faulthandler
import sys
from collections.abc import Iterator

__all__ = ["decode_watchdog"]


@contextlib.contextmanager
def decode_watchdog(seconds: float | None) -> Iterator[None]:
    """Hard time limit for the enclosed block: if it runs longer than ``seconds``, Python dumps
    every thread's traceback to stderr and the *process exits* (``faulthandler``; works even when
    the main thread is stuck inside an FFmpeg C call that never returns).

    Meant for DataLoader worker processes: a hung worker dies and the DataLoader raises
    "worker exited unexpectedly" instead of waiting forever. Do not use it in the main process
    of a job you want to survive. Only one watchdog is active at a time per process.
    """
    if not seconds:
        yield
        return
    faulthandler.dump_traceback_later(float(seconds), exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
