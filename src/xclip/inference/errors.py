"""Error messages of inference: one line that names the input and, for unreadable videos, the fix.

Batch runs (``classify_iter``, ``embed_videos``) record a failure per video instead of raising, and
the command-line tools print one line per mistake; both use these.

What counts as a bad video is narrow on purpose: the decoder's own errors
(:class:`~xclip.data.video.VideoDecodeError`) and the file system's (``OSError`` opening or
reading the file). Anything else raised while preparing a video (a ``TypeError`` in a transform,
an out-of-memory ``RuntimeError``) is a bug or an environment problem and propagates: it must
never become "unreadable video".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from xclip.data.video import VideoDecodeError, VideoTooLargeError
from xclip.errors import InputError

__all__ = [
    "BAD_VIDEO_ERRORS",
    "UnreadableVideoError",
    "VideoTooLargeError",
    "explain_decode_errors",
    "one_line_error",
]


class UnreadableVideoError(VideoDecodeError, InputError):
    """A video the decoder cannot read, with the fix in its message.

    A :class:`~xclip.data.video.VideoDecodeError` (so batch runs skip exactly these) and a
    ``InputError`` (a bad input: a ``ValueError`` for callers, one line on the command line).
    """

    def __init__(self, path: str, reason: str):
        self.decoder_reason = reason
        super().__init__(
            path,
            f"not a readable video ({reason}); check that it plays in a video player or "
            f"re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`",
        )

    def __reduce__(self):
        return (type(self), (self.path, self.decoder_reason))


# What a batch run may record as a failed video and go on: the decoder's and the file system's
# own errors, nothing else.
BAD_VIDEO_ERRORS: tuple[type[BaseException], ...] = (VideoDecodeError, OSError)


def one_line_error(e: BaseException) -> str:
    """The first line of ``e``'s message, or the exception's type name when it has none."""
    msg = str(e).strip()
    return msg.splitlines()[0] if msg else type(e).__name__


@contextlib.contextmanager
def explain_decode_errors() -> Iterator[None]:
    """Turn decoder errors into :class:`UnreadableVideoError` (one line naming the file and
    the fix)."""
    try:
        yield
    except (UnreadableVideoError, VideoTooLargeError):  # their messages say the fix already
        raise
    except VideoDecodeError as e:
        raise UnreadableVideoError(e.path, e.reason) from e
