"""Data-loading benchmark; same as ``xclip-video bench data`` (the code lives in
``xclip_app.bench.data``, which describes everything measured)."""

from __future__ import annotations

import argparse
import sys

from xclip_app.commands import bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Data-loading benchmark: clips/s per worker for TSN sparse test sampling."
    )
    bench.add_data_arguments(parser)
    return bench.run_data(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
