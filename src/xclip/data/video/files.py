"""Video files on disk: the one list of video extensions and expanding folders into files."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from xclip.errors import InputError

__all__ = ["VIDEO_EXTENSIONS", "find_videos"]

# Every container FFmpeg reads that users keep videos in; folder scans (inference inputs, class
# folders, the local page's listing) use this one list.
VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp",
    ".ts", ".ogv", ".gif",
)  # fmt: skip


def find_videos(inputs: Iterable[str | os.PathLike], recursive: bool = True) -> list[str]:
    """Expand files and folders into a sorted list of video files.

    Files named explicitly are kept whatever their extension (a non-video file then fails when
    decoded, with a clear message); folders contribute the files with a video extension
    (:data:`VIDEO_EXTENSIONS`), recursively by default. Raises ``FileNotFoundError`` for a path
    that does not exist and ``ValueError`` when folders hold no video at all.
    """
    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]  # one path, never iterated character by character
    out: list[str] = []
    empty_dirs = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            found = sorted(
                str(f) for f in it if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
            )
            if not found:
                empty_dirs.append(str(p))
            out.extend(found)
        elif p.exists():
            out.append(str(p))
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    if not out:
        where = ", ".join(empty_dirs) or "the input"
        raise InputError(
            f"no video files found in {where} (looked for {' '.join(VIDEO_EXTENSIONS)})"
        )
    return out
