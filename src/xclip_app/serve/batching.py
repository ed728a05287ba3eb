"""Dynamic batching: the videos of concurrent requests classified in one model call.

Requests queue their prepared videos; one task takes the first, waits up to ``max_wait``
seconds (or until ``max_views`` views are waiting) for more, and runs them all through
:meth:`~xclip.inference.VideoClassifier.predict_batch` (one pass of the video encoder, each
video with its own labels and template), as LitServe and Ray Serve batch. Every model call runs
on one dedicated thread: calls never overlap, the event loop never waits for the model, and a
compiled encoder (CUDA graphs) is captured once, on that thread, not once per client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from xclip.inference import Prediction, PreparedVideo, VideoClassifier

__all__ = ["BatchStats", "DynamicBatcher"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Item:
    prepared: PreparedVideo
    labels: list[str]
    template: str
    future: asyncio.Future


@dataclass
class BatchStats:
    """Model calls made and the videos they held (the benchmark reports the mean)."""

    calls: int = 0
    videos: int = 0


class DynamicBatcher:
    """Gathers :class:`PreparedVideo` of concurrent requests into model calls (see the module
    docstring). Start it on the server's event loop (:meth:`start`), stop it there."""

    def __init__(self, clf: VideoClassifier, max_views: int, max_wait: float) -> None:
        self.clf = clf
        self.max_views = max(1, max_views)
        self.max_wait = max(0.0, max_wait)
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xclip-model")
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._held: _Item | None = None  # taken from the queue, but for the next call

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="xclip-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.model_thread.shutdown(wait=False, cancel_futures=True)

    async def predict(
        self, prepared: Sequence[PreparedVideo], labels: list[str], template: str
    ) -> list[Prediction]:
        """Predictions of ``prepared`` (in order), each batched with whatever else is waiting."""
        assert self._queue is not None, "DynamicBatcher.start() was not awaited"
        loop = asyncio.get_running_loop()
        items = [_Item(p, labels, template, loop.create_future()) for p in prepared]
        for item in items:
            self._queue.put_nowait(item)
        try:
            return list(await asyncio.gather(*(i.future for i in items)))
        finally:
            for i in items:  # (the client left: drop what was not run yet)
                i.future.cancel()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the model thread, between batches: other uses of the model (a search
        query's text encoding) never run at the same time as a batch."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.model_thread, fn, *args)

    async def _next(self, timeout: float | None) -> _Item:
        assert self._queue is not None
        if self._held is not None:
            item, self._held = self._held, None
            return item
        if timeout is None:
            return await self._queue.get()
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def _gather(self) -> list[_Item]:
        loop = asyncio.get_running_loop()
        first = await self._next(None)
        batch, views = [first], len(first.prepared.clips)
        deadline = loop.time() + self.max_wait
        while views < self.max_views:
            try:
                item = await self._next(max(0.0, deadline - loop.time()))
            except (TimeoutError, asyncio.TimeoutError):
                break
            if views + len(item.prepared.clips) > self.max_views:
                self._held = item
                break
            batch.append(item)
            views += len(item.prepared.clips)
        return [i for i in batch if not i.future.done()]  # (cancelled: its client left)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            if not batch:
                continue
            try:
                preds = await loop.run_in_executor(self.model_thread, self._call, batch)
            except Exception as e:  # a bug or out of memory: every request of the batch says so
                for i in batch:
                    if not i.future.done():
                        i.future.set_exception(e)
                continue
            self.stats.calls += 1
            self.stats.videos += len(batch)
            for i, p in zip(batch, preds, strict=True):
                if not i.future.done():
                    p.timings["batch"] = len(batch)
                    i.future.set_result(p)

    def _call(self, batch: list[_Item]) -> list[Prediction]:
        return self.clf.predict_batch(
            [i.prepared for i in batch], [i.labels for i in batch], [i.template for i in batch]
        )
