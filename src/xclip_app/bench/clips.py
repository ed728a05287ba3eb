"""The clip catalogue of the data benchmark: Kinetics-like encodings, by name.

Only names and encoding parameters (no imports), so the command line can offer them as choices
without loading torch; :func:`xclip_app.bench.data.make_clips` writes the files.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["CLIPS", "DEFAULT_CLIPS", "ClipSpec"]


class ClipSpec(NamedTuple):
    """How one benchmark clip is encoded (10 s at 30 fps unless told otherwise)."""

    size: tuple[int, int]  # (width, height)
    gop: int  # frames between keyframes
    codec: str
    container: str


CLIPS: dict[str, ClipSpec] = {
    "h264_320x240_gop30": ClipSpec((320, 240), 30, "h264", "mp4"),
    "h264_320x240_gop250": ClipSpec((320, 240), 250, "h264", "mp4"),
    "mpeg4_320x240_gop30": ClipSpec((320, 240), 30, "mpeg4", "mp4"),
    "h264_1280x720_gop250": ClipSpec((1280, 720), 250, "h264", "mp4"),
}
DEFAULT_CLIPS = list(CLIPS)
