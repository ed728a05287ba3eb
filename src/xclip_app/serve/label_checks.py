"""The labels a request brings (a classify, a timeline, the Live view's new labels): a list of
strings, checked as everywhere (:func:`xclip.inference.check_labels`: no empty text, no
duplicate) and at most :data:`MAX_LABELS` of them; a 400 answer otherwise."""

from __future__ import annotations

from typing import Any

from xclip.inference import check_labels

from .api_errors import ApiError

__all__ = ["MAX_LABELS", "request_labels"]

MAX_LABELS = 1000


def request_labels(labels: Any) -> list[str]:
    """``labels`` checked (see the module doc); :class:`~.api_errors.ApiError` 400 otherwise."""
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ApiError(400, "'labels' must be a list of strings")
    try:
        labels = check_labels(labels)
    except (ValueError, TypeError) as e:
        raise ApiError(400, str(e)) from None
    if len(labels) > MAX_LABELS:
        raise ApiError(400, f"at most {MAX_LABELS} labels, got {len(labels)}")
    return labels
