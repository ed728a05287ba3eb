"""``xclip-video``: one console command, many subcommands (``xclip-video --help``)."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from . import commands
from .exit_codes import EXIT_INTERRUPTED, EXIT_USAGE, UsageError


def _command_modules() -> list[ModuleType]:
    mods = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        mods.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    return mods


def build_parser() -> argparse.ArgumentParser:
    """The ``xclip-video`` parser with one subparser per module of :mod:`xclip_app.commands`."""
    parser = argparse.ArgumentParser(
        prog="xclip-video",
        description="X-CLIP video recognition: models, conversion, benchmarks, training, inference.",
    )
    parser.add_argument(
        "--version", action="version", version=f"xclip {importlib.metadata.version('xclip')}"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``xclip-video`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    from xclip import CheckpointError  # lazy: CLI start-up

    try:
        return int(args._run(args) or 0)
    except (UsageError, CheckpointError, FileNotFoundError, ValueError) as e:
        # A user mistake gets one clear line, never a traceback (use -v to see one).
        if args.verbose:
            raise
        msg = str(e).strip() or type(e).__name__
        print(f"xclip-video {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
