"""The benchmarks' generated inputs (clips), made once and published through :mod:`xclip.atomic`.

A video writer picks its container from the file's extension, so it cannot write the atomic
temporary file (``.name.TOKEN.xclip.tmp``) itself: it writes into a private temporary folder
beside the target, and the finished file is moved into the atomic write. An existing file of
that name, whoever wrote it, is used and never replaced.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from xclip.atomic import atomic_write

__all__ = ["generate_once"]


def generate_once(path: str | os.PathLike, make: Callable[[str], object]) -> Path:
    """``path``; when it does not exist yet, first ``make(file)`` writes it (``file`` has
    ``path``'s name in a temporary folder) and it is published atomically, never over a file."""
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".xclip-generating-", dir=path.parent) as folder:
        made = Path(folder) / path.name
        make(str(made))
        # another run may have published it meanwhile: theirs is as good
        with contextlib.suppress(FileExistsError):
            atomic_write(path, lambda tmp: os.replace(made, tmp), overwrite=False)
    return path
