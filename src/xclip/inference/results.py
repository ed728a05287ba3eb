"""What inference hands back: ranked labels per video (or window), failures, retrieval hits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xclip.errors import InputError

__all__ = ["Prediction", "SearchHit", "VideoFailure"]


@dataclass(frozen=True)
class Prediction:
    """Ranked labels for one video (or one window of it with ``start``/``end`` in seconds).

    ``labels``/``probs`` are sorted best first; ``probs`` sum to 1 over the whole label set.
    ``frame_indices`` are the frames the model saw (``[num_clips][T]``), ``timings`` the seconds
    spent per stage (``decode``, ``preprocess``, ``model``).
    """

    labels: tuple[str, ...]
    probs: tuple[float, ...]
    source: str = ""
    start: float | None = None
    end: float | None = None
    frame_indices: tuple[tuple[int, ...], ...] = ()
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        """The best label."""
        return self.labels[0]

    @property
    def prob(self) -> float:
        """The best label's probability."""
        return self.probs[0]

    def top(self, k: int | None = None) -> list[tuple[str, float]]:
        """``[(label, prob), ...]``, best first; ``k`` = ``None`` or ``0``: all labels (as
        ``--top-k 0`` on the command line)."""
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise InputError(f"k must be an int >= 0 (0 or None: all labels), got {k!r}")
        n = k or len(self.labels)
        return list(zip(self.labels[:n], self.probs[:n], strict=True))

    def to_dict(self, k: int | None = None) -> dict[str, Any]:
        """The JSON record of the command-line tools: video, window times, top-``k`` labels."""
        d: dict[str, Any] = {"video": self.source}
        if self.start is not None:
            d["start"] = round(self.start, 3)
            d["end"] = round(self.end or 0.0, 3)
        d["predictions"] = [{"label": lb, "prob": round(p, 6)} for lb, p in self.top(k)]
        return d


@dataclass(frozen=True)
class VideoFailure:
    """A video that could not be processed, and why (one line)."""

    source: str
    error: str

    def to_dict(self) -> dict[str, str]:
        """The JSON record of the command-line tools."""
        return {"video": self.source, "error": self.error}


@dataclass(frozen=True)
class SearchHit:
    """One retrieved video: ``rank`` (1 = best), ``path`` and ``score`` (a cosine, -1..1)."""

    rank: int
    path: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of the command-line tools."""
        return {"rank": self.rank, "video": self.path, "score": round(self.score, 6)}
