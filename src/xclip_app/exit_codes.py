"""The exit-code contract of every ``xclip-video`` command, and the user-mistake exception."""

from __future__ import annotations

__all__ = [
    "EXIT_BUG",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "UsageError",
]

EXIT_OK = 0  # all done
EXIT_SOME_FAILED = 1  # some inputs failed, each named
EXIT_USAGE = 2  # a user mistake or an unusable input/environment: one line on stderr
EXIT_BUG = 70  # an unexpected error, i.e. a bug: traceback + a request to report it (EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
# SIGTERM (128 + SIGTERM), for the commands that catch it to finish cleanly (watch); the others
# are ended by it as the OS does
EXIT_TERMINATED = 143


class UsageError(Exception):
    """A mistake of the user (bad path, bad option value): one line on stderr, exit code 2."""
