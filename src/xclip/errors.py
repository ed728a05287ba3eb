"""The library's error for inputs it cannot use, as opposed to bugs.

``InputError`` (a ``ValueError``) means: the caller's argument, file or environment is unusable,
and the message says which and how to fix it. Everything the library raises for a caller's
mistake is an ``InputError`` or one of its subclasses (``CheckpointError``, ``AnnotationError``,
...); any other exception escaping the library is a bug. The ``xclip-video`` command turns
``InputError`` into one line on stderr and exit code 2, and anything unexpected into a
traceback, a request to report it, and exit code 70.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """An argument, file or setting that cannot be used; the message names it and the fix."""
