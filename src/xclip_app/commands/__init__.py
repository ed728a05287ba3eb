"""Subcommands of ``xclip-video``: each module defines ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``; modules are discovered automatically."""
