"""Segments from per-window probabilities: thresholds with hysteresis and a minimum duration.

Each window stands for its own slot of the timeline: the ``stride`` seconds around its centre
(consecutive windows tile the stream's clock, however much they overlap). For each label
independently:

- a segment **starts** at the slot of the first window whose probability reaches ``threshold``;
- it **goes on** while the probability stays at or above ``release`` (below ``threshold``:
  the hysteresis that keeps one event from flickering into many);
- it **ends** with the slot of the last window at or above ``release``.

A segment is reported as soon as it has lasted ``min_duration`` (``open=True``), and again when it
ends (``open=False``, with its end and peak); one that ends shorter than ``min_duration`` is
never reported. :meth:`Segmenter.flush` ends every open segment (the end of the stream, Ctrl-C,
a label removed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Segment", "Segmenter", "window_slot"]


def window_slot(start: float, end: float, stride: float) -> tuple[float, float]:
    """The part of the timeline a window stands for: ``stride`` seconds around its centre."""
    centre = (start + end) / 2
    return centre - stride / 2, centre + stride / 2


@dataclass(frozen=True)
class Segment:
    """A label's event on the stream's clock (seconds). ``open``: still going on (``end`` is
    then the latest slot's end); ``peak``: the highest window probability so far."""

    label: str
    start: float
    end: float
    peak: float
    open: bool

    @property
    def duration(self) -> float:
        return self.end - self.start

    def as_row(self) -> dict[str, Any]:
        return {"type": "segment", "label": self.label, "start": round(self.start, 3),
                "end": round(self.end, 3), "peak": round(self.peak, 4),
                "open": self.open}  # fmt: skip


@dataclass
class _Open:
    start: float
    end: float
    peak: float
    reported: bool = False


class Segmenter:
    """Turns ``update(slot_start, slot_end, probs)`` calls, in stream order, into
    :class:`Segment` events (see the module doc)."""

    def __init__(
        self, threshold: float, release: float | None = None, min_duration: float = 0.0
    ) -> None:
        release = threshold if release is None else release
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if not 0 < release <= threshold:
            raise ValueError(f"release must be in (0, threshold={threshold}], got {release}")
        if not min_duration >= 0:
            raise ValueError(f"min_duration must be >= 0 seconds, got {min_duration}")
        self.threshold, self.release, self.min_duration = threshold, release, min_duration
        self._open: dict[str, _Open] = {}

    @property
    def open_labels(self) -> list[str]:
        """The labels with a segment going on (reported or not yet)."""
        return list(self._open)

    def update(
        self, slot_start: float, slot_end: float, probs: Mapping[str, float]
    ) -> list[Segment]:
        """One window's probabilities per label; the segments reported by it."""
        out = []
        for label, p in probs.items():
            seg = self._open.get(label)
            if seg is None:
                if p >= self.threshold:
                    seg = self._open[label] = _Open(slot_start, slot_end, p)
                    out += self._confirm(label, seg)
                continue
            if p >= self.release:
                seg.end, seg.peak = slot_end, max(seg.peak, p)
                out += self._confirm(label, seg)
            else:
                out += self._close(label)
        for label in [k for k in self._open if k not in probs]:  # a label no longer asked for
            out += self._close(label)
        return out

    def flush(self, labels: Iterable[str] | None = None) -> list[Segment]:
        """End the open segments (of ``labels``; default all) at their last slot."""
        names = list(self._open) if labels is None else [k for k in labels if k in self._open]
        return [s for k in names for s in self._close(k)]

    def _confirm(self, label: str, seg: _Open) -> list[Segment]:
        if seg.reported or seg.end - seg.start < self.min_duration - 1e-6:
            return []
        seg.reported = True
        return [Segment(label, seg.start, seg.end, seg.peak, True)]

    def _close(self, label: str) -> list[Segment]:
        seg = self._open.pop(label)
        if seg.end - seg.start < self.min_duration - 1e-6:
            return []
        return [Segment(label, seg.start, seg.end, seg.peak, False)]
