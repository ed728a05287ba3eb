"""The exit-code contract of every ``xclip-video`` command, and the user-mistake exception."""

from __future__ import annotations

__all__ = ["EXIT_OK", "EXIT_SOME_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED", "UsageError"]

EXIT_OK = 0  # all done
EXIT_SOME_FAILED = 1  # some inputs failed, each named
EXIT_USAGE = 2  # a user mistake or an unusable input/environment: one line on stderr
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


class UsageError(Exception):
    """A mistake of the user (bad path, bad option value): one line on stderr, exit code 2."""
