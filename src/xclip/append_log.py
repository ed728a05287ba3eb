"""A file that grows a line at a time while others read it, and stays provably xclip's.

The one kind of file xclip writes in place rather than through :mod:`xclip.atomic`: a log that
a reader follows while it grows (``tail -f``, a dashboard), such as a training run's
``metrics.jsonl`` or the rows of ``xclip-video watch -o``. Each line is written whole and
flushed at once, so a follower sees complete lines (a crash can cut only the last one short).
The writer keeps the file's SHA-256 up to date as it appends and re-records the file in its
folder's manifest (:func:`xclip.ownership.record_file`) after every line, without reading it
again: a later ``--overwrite`` can prove xclip wrote it, and a file edited by hand meanwhile is
no longer xclip's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import TracebackType

from .atomic import atomic_write_text
from .ownership import record_file

__all__ = ["AppendLog"]


class AppendLog:
    """Append lines to ``path`` (see the module doc).

    ``fresh``: start an empty file first, atomically (an existing file is replaced only if
    xclip wrote it, :class:`~xclip.ownership.ForeignFileError` otherwise); else append to the
    file as it is (created if missing)."""

    def __init__(self, path: str | os.PathLike, *, fresh: bool = False) -> None:
        self.path = Path(path)
        if fresh or not self.path.exists():
            atomic_write_text(self.path, "")
        self._f = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        self._sha = hashlib.sha256(self.path.read_bytes())
        self.lines = 0  # lines written by this writer

    def write_line(self, line: str) -> None:
        """Append ``line`` (a newline is added) and flush it."""
        text = line + "\n"
        self._f.write(text)
        self._f.flush()
        self._sha.update(text.encode("utf-8"))
        record_file(self.path, sha256=self._sha.hexdigest(), sync=False)
        self.lines += 1

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
