"""Error messages of inference: one line that names the input and, for unreadable videos, the fix.

Batch runs (``classify_iter``, ``embed_videos``) record a failure per video instead of raising, and
the command-line tools print one line per mistake; both use these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from xclip.data.video import VideoDecodeError

__all__ = ["explain_decode_errors", "one_line_error"]


def one_line_error(e: BaseException) -> str:
    """The first line of ``e``'s message, or the exception's type name when it has none."""
    msg = str(e).strip()
    return msg.splitlines()[0] if msg else type(e).__name__


@contextlib.contextmanager
def explain_decode_errors() -> Iterator[None]:
    """Turn decoder errors into one-line ``ValueError``s that name the file and the fix."""
    try:
        yield
    except VideoDecodeError as e:
        raise ValueError(
            f"{e.path}: not a readable video ({e.reason}); check that it plays in a video player "
            f"or re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`"
        ) from None
