"""The videos of a moments library as the Search view offers them: a number (the id the API
names a video by), a name to show, and the file to play or take a thumbnail from, only while it
is the file that was embedded.

A client names a video by its number only, never by a path, so no request can reach a file the
library does not list. Names are the library's paths as embedded when those are relative; when
they are absolute (``embed /data/videos ...``), they are shown relative to the folder all the
library's videos share, so no answer tells the server's layout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from xclip_app.collection_inputs import is_uri
from xclip_app.engines.window_work import file_identity

from .api_errors import ApiError, short

__all__ = ["LibraryVideos"]

Identity = tuple[int | None, float | None]


def _plain_relative(path: str) -> bool:
    p = PurePosixPath(path.replace(os.sep, "/"))
    return not is_uri(path) and not p.is_absolute() and ".." not in p.parts


class LibraryVideos:
    """``paths``: the library's videos as embedded; ``locations``: the same videos' absolute
    paths or URIs; ``identities``: location -> (size, modification time) when embedded (a
    library without window rows has none: then only a missing file is noticed)."""

    def __init__(
        self,
        paths: Sequence[str],
        locations: Sequence[str],
        identities: Mapping[str, Identity] | None = None,
    ) -> None:
        self.locations = list(locations)
        self.identities = dict(identities or {})
        local = [loc.removeprefix("file://") for loc in self.locations if not is_uri(loc)
                 or loc.startswith("file://")]  # fmt: skip
        dirs = [os.path.dirname(loc) for loc in local]
        #: the folder all local videos share (error messages name files relative to it)
        self.root: Path | None = Path(os.path.commonpath(dirs)) if dirs else None
        if all(_plain_relative(p) for p in paths):
            self.names = [p.replace(os.sep, "/") for p in paths]
        else:
            self.names = [self._relative(loc) for loc in self.locations]

    def _relative(self, location: str) -> str:
        if is_uri(location) and not location.startswith("file://"):
            return location
        path = location.removeprefix("file://")
        assert self.root is not None
        return Path(os.path.relpath(path, self.root)).as_posix()

    def __len__(self) -> int:
        return len(self.names)

    def number(self, video_id: Any) -> int:
        """The video numbered ``video_id`` (digits, no leading zero); 404 for anything else."""
        vid = str(video_id)
        if not (vid.isascii() and vid.isdigit() and len(vid) <= 9 and str(int(vid)) == vid
                and int(vid) < len(self)):  # fmt: skip
            raise ApiError(
                404, f"no video {short(vid, 40)!r} in the library (the ids come with the results)"
            )
        return int(vid)

    def file(self, vid: int) -> Path:
        """The file of video ``vid`` as the library embedded it: 404 for a video stored at a
        URI, 410 when the file is gone or has changed since it was embedded."""
        name, location = self.names[vid], self.locations[vid]
        if is_uri(location) and not location.startswith("file://"):
            raise ApiError(404, f"{name} is stored at a URI; this server plays local files only")
        path = location.removeprefix("file://")
        now = file_identity(path)
        fix = "update the library (`xclip-video embed VIDEOS --window S -o LIB`)"
        if now == (None, None) or not os.path.isfile(path):
            raise ApiError(410, f"{name} is no longer where the library found it; {fix}")
        recorded = self.identities.get(location)
        if recorded is not None and recorded != (None, None) and tuple(recorded) != now:
            raise ApiError(410, f"{name} has changed since the library was built; {fix}")
        return Path(path)
