"""The folder of videos a server offers to pick (``--videos-dir``): what is listed, and what a
requested name may resolve to (a listed video, never a path out of the folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xclip.data.video import VIDEO_EXTENSIONS

from .api_errors import ApiError

__all__ = ["VideoFolder"]

MAX_PATH_CHARS = 1024
MAX_LISTED = 10000


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


class VideoFolder:
    """``root``'s videos (``None``: no folder, nothing to pick)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _pickable(self, path: Path, real_root: Path) -> bool:
        """A file with a video extension whose real path (symlinks followed) is inside the
        folder and has a video extension too."""
        try:
            if path.suffix.lower() not in VIDEO_EXTENSIONS or not path.is_file():
                return False
            real = path.resolve()
        except (OSError, RuntimeError):  # unreadable entry, name too long, symlink loop (<3.13)
            return False
        return _inside(real, real_root) and real.suffix.lower() in VIDEO_EXTENSIONS

    def list_videos(self) -> list[str]:
        if self.root is None:
            return []
        real_root = self.root.resolve()
        out = [
            p.relative_to(self.root).as_posix()
            for p in sorted(self.root.rglob("*"))
            if self._pickable(p, real_root)
        ]
        return out[:MAX_LISTED]

    def resolve(self, rel: Any) -> Path:
        """A picked video: a relative path that the listing shows (403 out of the folder, 404
        for anything else)."""
        root = self.root
        if root is None:
            raise ApiError(400, "this server has no video folder (--videos-dir)")
        if not isinstance(rel, str) or not rel.strip() or len(rel) > MAX_PATH_CHARS:
            raise ApiError(400, "'video' must be a path relative to the folder")
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts or "\x00" in rel:
            raise ApiError(403, f"video path {rel!r} must be relative, inside the video folder")
        real_root = root.resolve()
        missing = ApiError(
            404, f"no video {rel!r} in the folder (GET /api/info lists the videos to pick)"
        )
        try:
            full = (root / p).resolve()
        except (OSError, RuntimeError):  # name too long, symlink loop (Python < 3.13)
            raise missing from None
        if not _inside(full, real_root):
            raise ApiError(403, f"video path {rel!r} leaves the video folder")
        if not self._pickable(root / p, real_root):
            raise missing
        return full
