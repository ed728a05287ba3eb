"""Open-vocabulary recognition on live sources: cameras, network streams, pipes, paced files.

:class:`Watcher` takes a window of the stream every stride, ranks the labels (which can change
while it runs) and turns the probabilities into segments with a start and an end. The pieces:
``ring`` (the bounded frame ring between the reader and the model), ``stream`` (the reader
thread: opening, reconnecting, timing out), ``segments`` (thresholds with hysteresis),
``watcher`` (the loop that keeps up or skips, and its events). See docs/live.md.
"""

from .ring import Frame, FrameRing
from .segments import Segment, Segmenter, window_slot
from .stream import SourceEvent, StreamReader, source_kind
from .watcher import LabelsChanged, LiveSourceError, Watcher, WatchStats, WindowResult

__all__ = [
    "Frame",
    "FrameRing",
    "LabelsChanged",
    "LiveSourceError",
    "Segment",
    "Segmenter",
    "SourceEvent",
    "StreamReader",
    "WatchStats",
    "Watcher",
    "WindowResult",
    "source_kind",
    "window_slot",
]
