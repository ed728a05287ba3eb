"""Argparse types of the commands' number options: every float option of every command is a
:func:`finite_float` with its range, so ``nan``, ``inf`` or a value out of range is argparse's
one-line error (exit 2) before any work, never a traceback later (docs/reliability.md)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["finite_float", "positive_float"]


def finite_float(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str], float]:
    """An argparse ``type=`` for a finite float in ``[low, high]`` (``low_open``/``high_open``
    exclude the bound; ``None`` = unbounded): ``nan``, ``inf`` and out-of-range values raise
    :class:`argparse.ArgumentTypeError` naming the range."""

    def describe() -> str:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        return "a finite number" + (f" {' and '.join(parts)}" if parts else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {describe()}, got {text!r}") from None
        too_low = low is not None and (value < low or (low_open and value == low))
        too_high = high is not None and (value > high or (high_open and value == high))
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {describe()}, got {text}")
        return value

    parse.__name__ = "number"
    parse.finite_float = True  # type: ignore[attr-defined]  # found by tests walking the parser
    return parse


def positive_float() -> Callable[[str], float]:
    """A finite float > 0 (seconds, sizes, CPUs)."""
    return finite_float(0.0, low_open=True)
