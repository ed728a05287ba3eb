"""``xclip-video``: one console command, many subcommands (``xclip-video --help``)."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import pkgutil
import sys
import traceback
import typing
from collections.abc import Sequence
from types import ModuleType

from . import commands
from .exit_codes import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USAGE, UsageError


def _command_modules() -> list[ModuleType]:
    mods = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        mods.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    return mods


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line (``PROG: error: ...``), not the usage
    block argparse prints first: the exit-code contract's one line on stderr, exit 2. The
    options are one ``--help`` away, and the line says so."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``xclip-video`` parser with one subparser per module of :mod:`xclip_app.commands`."""
    parser = OneLineParser(
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
    """Run ``xclip-video`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    The contract (docs/reliability.md): 0 all done; 1 some inputs failed, each named by the
    command; 2 a user mistake or an unusable input or environment, as one line on stderr;
    70 a bug (traceback and a request to report it); 130 interrupted. ``-v`` adds detail
    (a traceback for mistakes too) but never changes the code.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a bad flag (2, one line), --help or --version (0): returned too
        return int(e.code or 0) if isinstance(e.code, int | None) else EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    from xclip.data.video import VideoDecodeError  # lazy: CLI start-up
    from xclip.errors import InputError  # lazy: CLI start-up
    from xclip.ownership import held_outputs, release_outputs  # lazy: CLI start-up

    prog = f"xclip-video {args.command}"
    earlier = held_outputs()  # a command run by another (the demo's train) keeps the caller's
    try:
        refuse_empty_paths(args)
        return int(args._run(args) or 0)
    except (UsageError, InputError, VideoDecodeError, OSError) as e:
        # the user's input or environment: one line naming the problem and the fix
        if args.verbose:
            traceback.print_exc()
        print(f"{prog}: error: {one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        traceback.print_exc()
        print(
            f"{prog}: internal error: this is a bug in xclip, not a problem with your input. "
            "Please report it with the command line and the traceback above.",
            file=sys.stderr,
        )
        return EXIT_BUG
    finally:
        release_outputs(keep=earlier)  # this command's outputs: the next writer may start


# every option that names a file or folder to read or write; "" would mean the current folder
PATH_DESTS = ("output", "out", "json", "json_path", "clean_list", "dst", "src", "model", "index")


def refuse_empty_paths(args: argparse.Namespace) -> None:
    """An empty path (``-o ""``, an unset variable in a script) is a mistake in every command,
    never the current folder or "no output": one line, exit 2."""
    for dest in PATH_DESTS:
        value = getattr(args, dest, None)
        if isinstance(value, str) and not value.strip():
            name = dest.upper() if dest in ("dst", "src") else "--" + dest.replace("_", "-")
            raise UsageError(f"{name} is empty; give a path")


def one_line(e: BaseException) -> str:
    """The message of a user-facing error; an OSError without one gets its errno text and path."""
    if isinstance(e, OSError) and e.strerror and not str(e).startswith("["):
        return str(e)
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror}{where}"
    return str(e).strip() or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
