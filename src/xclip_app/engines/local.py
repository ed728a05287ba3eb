"""The ``local`` engine: this process, ``workers`` decoding threads working ahead of the model
(decoding releases the GIL), one model. Rows come back in input order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["run_local"]


def run_local(
    paths: Sequence[str],
    prepare: Callable[[str], dict[str, Any]],
    process: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    *,
    workers: int = 1,
) -> Iterator[list[dict[str, Any]]]:
    """``process([prepare(path)])`` for each path (one list of result rows per video), the
    next ``2 * workers`` videos prepared in background threads (``workers=0``: inline)."""
    if workers <= 0:
        for p in paths:
            yield process([prepare(p)])
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xclip-decode") as pool:
        pending: deque[Future] = deque()
        it = iter(paths)
        for p in it:
            pending.append(pool.submit(prepare, p))
            if len(pending) >= 2 * workers:
                break
        while pending:
            prepared = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(prepare, nxt))
            yield process([prepared])
